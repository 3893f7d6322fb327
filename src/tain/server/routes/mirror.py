"""What a site offers its followers, and mirror state: the revision log with change
lists, blobs by SHA-256, revision events (long-poll), full manifests, head statements,
the key chain, the sync trace, promote and key rotation. Every site serves them, so
mirrors can follow mirrors. See docs/mirrors.md."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tain.catalog.models import Role
from tain.core.digests import is_digest
from tain.core.statements import manifest_line
from tain.errors import Forbidden, InvalidRequest, NotFound
from tain.server.deps import PrincipalDep, SiteDep, get_principal, get_site
from tain.server.download import file_response
from tain.server.routes.common import repo_for
from tain.service.auth import require_admin, role_on
from tain.service.heads import rotate_key
from tain.service.promote import promote

router = APIRouter(prefix="/api/v1", tags=["mirrors"])
MAX_WAIT = 60.0
SLICE = 1.0


@router.get("/repos/{repo}/log")
def revision_log(
    repo: str, site: SiteDep, who: PrincipalDep, since: int = 0, max_bytes: int = 8 << 20
) -> dict[str, Any]:
    """Revisions after ``since`` with their change lists, paged by size. ``snapshot``
    names a revision to start from by its full state when the log cannot be replayed
    from ``since`` (retention dropped older revisions, or they predate change lists)."""
    found = repo_for(site, who, repo, Role.READ)
    settings = {k: v for k, v in found.to_json().items()
                if k in ("name", "public", "description", "keep_last", "keep_days", "head",
                         "oldest_kept")}
    snapshot = found.oldest_kept if since < found.oldest_kept - 1 else None
    logged = site.catalog.change_log(repo, max(since, (snapshot or 1) - 1),
                                     max_bytes=max(1, min(max_bytes, 64 << 20)))
    revisions: list[dict[str, Any]] = []
    for item in logged:
        if item.changes is None:
            snapshot, revisions = item.revision.number, []
            continue
        revisions.append({**item.revision.to_json(), "changes": json.loads(item.changes)})
    last = logged[-1].revision.number if logged else since
    return {"repo": settings, "snapshot": snapshot, "revisions": revisions,
            "through": last, "more": last < found.head}


@router.head("/blobs/{sha256}", include_in_schema=False)
@router.get("/blobs/{sha256}")
def blob(sha256: str, request: Request) -> Response:
    """One blob's bytes (Range supported) for a caller who may read a repository that
    uses it at a kept revision, or a site admin."""
    if not is_digest(sha256):
        raise InvalidRequest("a blob is named by 64 lowercase hex digits")
    site, who = get_site(request), get_principal(request)
    if not who.is_admin and not _may_read_blob(site, who, sha256):
        raise NotFound(f"no blob {sha256} that you may read")
    if not site.catalog.known_blobs([sha256]):
        raise NotFound(f"no blob {sha256}")
    return file_response(request, opener=lambda: site.store.open(sha256),
                         size=site.store.size(sha256),
                         sha256=sha256, mtime_ns=0, filename=sha256,
                         local_path=site.store.local_path(sha256))


def _may_read_blob(site: Any, who: Any, sha256: str) -> bool:
    for repo_name, _, _ in site.catalog.blob_uses(sha256, limit=50):
        repo = site.reads.repo(repo_name)
        if role_on(site.catalog, who, repo) is not None:
            return True
    return False


@router.get("/events")
async def events(request: Request, since: int = 0, timeout: float = 30.0) -> dict[str, Any]:
    """Long-poll: answers as soon as a repository changes after event ``since`` (or at
    ``timeout``) with the new event number and the changed repositories."""
    site = get_site(request)
    await run_in_threadpool(get_principal, request)
    deadline = time.monotonic() + max(0.0, min(timeout, MAX_WAIT))
    while True:  # in slices, so a follower that went away frees its thread soon
        left = deadline - time.monotonic()
        seq, repos = await run_in_threadpool(site.events.wait, since, min(SLICE, left))
        if seq != since or left <= SLICE or await request.is_disconnected():
            return {"seq": seq, "repos": repos}


@router.get("/repos/{repo}/manifest")
def manifest(repo: str, site: SiteDep, who: PrincipalDep, rev: int | None = None) -> Response:
    """The canonical manifest at ``rev`` (head by default): one JSON line per path, in
    path order. Its SHA-256 is the ``manifest_digest`` of a head statement."""
    repo_for(site, who, repo, Role.READ)
    _, number = site.catalog.resolve_rev(repo, rev)

    def lines() -> Iterator[bytes]:
        for entry in site.catalog.iter_tree(repo, number):
            yield manifest_line(entry)

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"X-Tain-Revision": str(number)})


@router.get("/repos/{repo}/head")
def head(repo: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    """The signed, expiring head statement (mirrors serve their upstream's verbatim)."""
    repo_for(site, who, repo, Role.READ)
    statement = site.catalog.get_head(repo)
    if statement is None:
        raise NotFound(f"{repo} has no head statement yet", hint="it is signed just after "
                       "the first commit; try again in a moment")
    return statement


@router.get("/keys")
def keys(site: SiteDep) -> dict[str, Any]:
    """The key chain: the root key, then each rotation signed by the key before it."""
    return {"chain": [link.to_json() for link in site.catalog.key_chain()]}


@router.post("/keys/rotate", status_code=201)
def rotate(site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    return rotate_key(site, actor=who.name).to_json()


@router.get("/mirror")
def mirror_state(site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    """This site's role and, on a mirror, the trace of every repository it follows
    (a site admin also sees those not created here yet: a first sync that failed)."""
    if who.user is None:
        raise Forbidden("the mirror state needs a token")
    visible = {r.name for r in site.catalog.list_repos() if role_on(site.catalog, who, r)}
    return {
        "mirror_of": site.mirror_of,
        "upstreams": list(site.config.mirror.upstreams) if site.config.mirror else [],
        "traces": [t.to_json() for t in site.catalog.list_traces()
                   if t.repo in visible or who.is_admin],
    }


@router.post("/mirror/promote")
def promote_site(
    site: SiteDep, who: PrincipalDep, new_root: bool = False
) -> dict[str, Any]:
    """Make this mirror the primary: stop following, accept pushes (see docs)."""
    require_admin(who)
    return promote(site, actor=who.name, new_root=new_root)
