"""Changing a repository from the console: rollback (after a confirmation page) and
retention settings. Both call the services in-process, as the API routes do."""

from __future__ import annotations

from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from tain.catalog.models import Role
from tain.core.paths import normalize_path
from tain.errors import UsageError
from tain.server.console.render import ConsoleRoute, page, see_other
from tain.server.console.urls import PREFIX
from tain.server.console.viewer import PosterDep, ViewerDep
from tain.service.rollback import rollback

router = APIRouter(route_class=ConsoleRoute)
_Number = TypeVar("_Number", int, float)


@router.get("/repos/{name}/rollback")
def confirm_rollback(request: Request, name: str, to: int, viewer: ViewerDep,
                     path: str = "") -> Response:
    clean = normalize_path(path, allow_root=True)
    repo = viewer.repo(name, Role.WRITE if clean else Role.ADMIN)
    catalog = viewer.state.site.catalog
    catalog.resolve_rev(name, to)  # NotFound for a revision not kept
    changes = catalog.diff(name, repo.head, to, clean)
    return page(request, "rollback.html", viewer, repo=repo, to=to, path=clean,
                changes=changes, target=catalog.get_revision(name, to))


@router.post("/repos/{name}/rollback")
def do_rollback(
    name: str, viewer: PosterDep, to: Annotated[int, Form()],
    path: Annotated[str, Form()] = "", confirm: Annotated[str, Form()] = "",
) -> Response:
    clean = normalize_path(path, allow_root=True)
    viewer.repo(name, Role.WRITE if clean else Role.ADMIN)
    if confirm != "yes":
        raise UsageError("the rollback was not confirmed")
    result = rollback(viewer.state.site, name, to, author=viewer.name, path=clean or None)
    number = result.revision.number
    if clean:
        query = urlencode({"path": clean, "notice": f"rolled back to {to}: revision {number}"})
        return see_other(f"{PREFIX}/repos/{name}/history?{query}")
    query = urlencode({"notice": f"rolled back to {to}: revision {number}"})
    return see_other(f"{PREFIX}/repos/{name}/revisions?{query}")


@router.post("/repos/{name}/retention")
def set_retention(
    name: str, viewer: PosterDep, keep_last: Annotated[str, Form()] = "",
    keep_days: Annotated[str, Form()] = "", apply_now: Annotated[str, Form()] = "",
) -> Response:
    viewer.repo(name, Role.ADMIN)
    site = viewer.state.site
    last, days = _positive(keep_last, int, "keep last"), _positive(keep_days, float, "keep days")
    site.catalog.update_repo(name, actor=viewer.name, keep_last=last, keep_days=days)
    site.reads.forget(name)
    notice = "retention saved"
    if apply_now:
        dropped = site.catalog.apply_retention(name, actor=viewer.name)
        site.publish(name)
        notice += f"; applied: {dropped} old entries dropped"
    return see_other(f"{PREFIX}/repos/{name}/revisions?{urlencode({'notice': notice})}")


def _positive(text: str, kind: type[_Number], label: str) -> _Number | None:
    """An empty field means no limit; otherwise a positive number."""
    text = text.strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{label} must be a number, not {text!r}") from None
    if value <= 0:
        raise UsageError(f"{label} must be positive (leave it empty for no limit)")
    return value
