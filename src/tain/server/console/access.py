"""Users and access (site admins only): users, their tokens (a new one is shown
once), console passwords, and grants per repository."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from tain.catalog.models import Role
from tain.core.paths import check_user_name
from tain.errors import UsageError
from tain.server.console.render import ConsoleRoute, page, see_other
from tain.server.console.urls import PREFIX
from tain.server.console.viewer import PosterDep, ViewerDep
from tain.service.auth import new_token
from tain.service.passwords import hash_password

router = APIRouter(route_class=ConsoleRoute)
USERS = f"{PREFIX}/users"


def _back(notice: str) -> Response:
    return see_other(f"{USERS}?{urlencode({'notice': notice})}")


@router.get("/users")
def users(request: Request, viewer: ViewerDep) -> Response:
    viewer.require_admin()
    catalog = viewer.state.site.catalog
    return page(request, "users.html", viewer, users=catalog.list_users(),
                tokens=catalog.list_tokens(), grants=catalog.list_grants(),
                repos=catalog.list_repos(), roles=[str(r) for r in Role])


@router.post("/users")
def create_user(
    viewer: PosterDep, name: Annotated[str, Form()], admin: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    viewer.require_admin()
    catalog = viewer.state.site.catalog
    digest = hash_password(password) if password else None  # checked before creating
    catalog.create_user(check_user_name(name.strip()), is_admin=bool(admin), actor=viewer.name)
    if digest:
        catalog.set_password(name.strip(), digest, actor=viewer.name)
    return _back(f"created user {name.strip()}")


@router.post("/users/{name}/delete")
def delete_user(name: str, viewer: PosterDep) -> Response:
    viewer.require_admin()
    if name == viewer.name:
        raise UsageError("you cannot remove yourself", hint="sign in as another admin")
    viewer.state.site.catalog.delete_user(name, actor=viewer.name)
    return _back(f"removed user {name}")


@router.post("/users/{name}/password")
def set_password(name: str, viewer: PosterDep, password: Annotated[str, Form()]) -> Response:
    viewer.require_admin()
    viewer.state.site.catalog.set_password(name, hash_password(password), actor=viewer.name)
    return _back(f"set the password of {name}")


@router.post("/tokens")
def create_token(
    request: Request, viewer: PosterDep, user: Annotated[str, Form()],
    name: Annotated[str, Form()] = "console", expires_days: Annotated[str, Form()] = "",
) -> Response:
    viewer.require_admin()
    site = viewer.state.site
    days = expiry_days(expires_days)
    secret, digest = new_token()
    token = site.catalog.create_token(
        check_user_name(user), name=name.strip() or "console", token_hash=digest,
        expires_at=site.clock() + days * 86400 if days else None, actor=viewer.name)
    # rendered, not redirected: the secret is shown on this one response only
    return page(request, "token_created.html", viewer, token=token, secret=secret)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: int, viewer: PosterDep) -> Response:
    viewer.require_admin()
    token = viewer.state.site.catalog.revoke_token(token_id, actor=viewer.name)
    return _back(f"revoked token {token.id} of {token.user}")


@router.post("/grants")
def set_grant(viewer: PosterDep, user: Annotated[str, Form()], repo: Annotated[str, Form()],
              role: Annotated[str, Form()]) -> Response:
    viewer.require_admin()
    parsed = None if role == "none" else Role.parse(role)
    viewer.state.site.catalog.set_grant(user, repo, parsed, actor=viewer.name)
    return _back(f"{user} on {repo}: {parsed or 'no access'}")


def expiry_days(text: str) -> float | None:
    """The form's "expires in N days" field: empty for never."""
    text = text.strip()
    if not text:
        return None
    try:
        days = float(text)
    except ValueError:
        raise UsageError(f"expiry must be a number of days, not {text!r}") from None
    if days <= 0:
        raise UsageError("expiry must be a positive number of days")
    return days
