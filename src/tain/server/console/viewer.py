"""Who is looking at a console page: the signed-in user of a live session.

``get_viewer`` resolves the session cookie (anonymous visitors are sent to the
sign-in page); ``get_poster`` additionally checks the CSRF token of a POST, sent as
the ``csrf`` form field or, from htmx, the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tain.catalog.models import Repo, Role
from tain.catalog.sessions import ConsoleSession
from tain.errors import Forbidden, NotFound
from tain.server.console.state import ConsoleState, console_state
from tain.service.auth import Principal, role_on
from tain.service.sessions import csrf_matches, csrf_token

COOKIE = "tain_console"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """No live session: the console answers with the sign-in page."""


@dataclass(frozen=True)
class Viewer:
    session: ConsoleSession
    secret: str
    state: ConsoleState

    @property
    def name(self) -> str:
        return self.session.user.name

    @property
    def is_admin(self) -> bool:
        return self.session.user.is_admin

    @property
    def principal(self) -> Principal:
        return Principal(self.session.user)

    @property
    def csrf(self) -> str:
        return csrf_token(self.secret)

    def role_on(self, repo: Repo) -> Role | None:
        return role_on(self.state.site.catalog, self.principal, repo)

    def may(self, repo: Repo, role: Role) -> bool:
        held = self.role_on(repo)
        return held is not None and held >= role

    def repo(self, name: str, role: Role = Role.READ) -> Repo:
        """The repository, if the viewer holds ``role`` on it. One they cannot read
        is reported as missing, so names do not leak."""
        repo = self.state.site.catalog.get_repo(name)
        if not self.may(repo, Role.READ):
            raise NotFound(f"no repository {name!r}")
        if not self.may(repo, role):
            raise Forbidden(f"{self.name} lacks {role} access to {name}")
        return repo

    def readable_repos(self) -> list[Repo]:
        return [r for r in self.state.site.catalog.list_repos() if self.may(r, Role.READ)]

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden(f"{self.name} is not a site admin")


def get_viewer(request: Request) -> Viewer:
    state = console_state(request)
    secret = request.cookies.get(COOKIE)
    session = state.sessions.resume(secret)
    if session is None or secret is None:
        raise SignInRequired
    return Viewer(session, secret, state)


async def get_poster(request: Request, viewer: Annotated[Viewer, Depends(get_viewer)]) -> Viewer:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get("csrf")
        sent = field if isinstance(field, str) else None
    if not csrf_matches(viewer.secret, sent):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page")
    return viewer


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
PosterDep = Annotated[Viewer, Depends(get_poster)]
