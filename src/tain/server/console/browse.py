"""The repository browser: a tree at any revision, a file's history, revisions, and
the diff between two revisions. Downloads link to the site's own file URLs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tain.catalog.models import Repo, Role
from tain.core.manifest import Kind
from tain.core.paths import normalize_path, parent_of
from tain.errors import InvalidRequest, NotFound
from tain.server.console.render import ConsoleRoute, page
from tain.server.console.viewer import Viewer, ViewerDep

router = APIRouter(route_class=ConsoleRoute)
REVISIONS_PER_PAGE = 50
MAX_ROWS = 2000  # a directory or diff longer than this is cut (the API pages through all)


@router.get("/repos")
def repo_list(request: Request, viewer: ViewerDep) -> Response:
    return page(request, "repos.html", viewer, repos=viewer.readable_repos())


@router.get("/repos/{name}")
def tree(request: Request, name: str, viewer: ViewerDep, path: str = "",
         rev: int | None = None) -> Response:
    repo = viewer.repo(name)
    catalog = viewer.state.site.catalog
    clean = normalize_path(path, allow_root=True)
    if repo.head == 0:
        return page(request, "tree.html", viewer, repo=repo, path="", rev=0, entries=[],
                    entry=None, revisions=[], crumbs=[], **_rights(viewer, repo))
    _, number = catalog.resolve_rev(name, rev)
    entry = catalog.lookup(name, clean, number) if clean else None
    if clean and entry is None:
        raise NotFound(f"{clean} is not in {name} at revision {number}")
    listing = (catalog.list_dir(name, clean, number)
               if entry is None or entry.kind is Kind.DIR else [])
    listing.sort(key=lambda e: (e.kind is not Kind.DIR, e.path))
    return page(request, "tree.html", viewer, repo=repo, path=clean, rev=number, entry=entry,
                entries=listing[:MAX_ROWS], total=len(listing), crumbs=_crumbs(clean),
                revisions=catalog.list_revisions(name, limit=REVISIONS_PER_PAGE),
                **_rights(viewer, repo))


@router.get("/repos/{name}/history")
def history(request: Request, name: str, path: str, viewer: ViewerDep) -> Response:
    repo = viewer.repo(name)
    clean = normalize_path(path)
    versions = sorted(viewer.state.site.catalog.history(name, clean),
                      key=lambda v: v.rev_from, reverse=True)
    if not versions:
        raise NotFound(f"{clean} has no kept history in {name}")
    return page(request, "history.html", viewer, repo=repo, path=clean, versions=versions,
                crumbs=_crumbs(clean), **_rights(viewer, repo))


@router.get("/repos/{name}/revisions")
def revisions(request: Request, name: str, viewer: ViewerDep,
              before: int | None = None) -> Response:
    repo = viewer.repo(name)
    revs = viewer.state.site.catalog.list_revisions(name, limit=REVISIONS_PER_PAGE,
                                                    before=before)
    older = revs[-1].number if revs and revs[-1].number > repo.oldest_kept else None
    return page(request, "revisions.html", viewer, repo=repo, revisions=revs, older=older,
                **_rights(viewer, repo))


@router.get("/repos/{name}/diff")
def diff(request: Request, name: str, viewer: ViewerDep, old: int | None = None,
         new: int | None = None, path: str = "") -> Response:
    repo = viewer.repo(name)
    new_rev = repo.head if new is None else new
    old_rev = max(new_rev - 1, 0) if old is None else old
    if old_rev < 0 or new_rev < 0:
        raise InvalidRequest("revision numbers are never negative")
    prefix = normalize_path(path, allow_root=True)
    items = viewer.state.site.catalog.diff(name, old_rev, new_rev, prefix)
    return page(request, "diff.html", viewer, repo=repo, old=old_rev, new=new_rev,
                path=prefix, items=items[:MAX_ROWS], total=len(items), **_rights(viewer, repo))


def _rights(viewer: Viewer, repo: Repo) -> dict[str, bool]:
    """What the page offers: file rollback needs write, the rest admin (as the API)."""
    return {"can_rollback_file": viewer.may(repo, Role.WRITE),
            "can_admin": viewer.may(repo, Role.ADMIN)}


def _crumbs(path: str) -> list[tuple[str, str]]:
    """(name, path) of each directory down to ``path``, for the breadcrumb."""
    crumbs: list[tuple[str, str]] = []
    while path:
        crumbs.append((path.rsplit("/", 1)[-1], path))
        path = parent_of(path)
    return list(reversed(crumbs))
