"""Repositories, revisions and read-only views of the versioned tree."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tain.catalog.models import Role
from tain.core.paths import normalize_path
from tain.core.signing import fingerprint
from tain.errors import NotFound
from tain.server.deps import PrincipalDep, SiteDep
from tain.server.routes.common import clean_path, repo_for
from tain.service.auth import require_admin, role_on
from tain.service.rollback import rollback

router = APIRouter(prefix="/api/v1", tags=["repositories"])


class RepoCreate(BaseModel):
    name: str
    public: bool = False
    description: str = ""


class RepoPatch(BaseModel):
    public: bool | None = None
    description: str | None = None
    keep_last: int | None = None
    keep_days: float | None = None


class RollbackBody(BaseModel):
    to_rev: int
    path: str | None = None
    message: str | None = None


def _repo_json(site: SiteDep, name: str) -> dict[str, Any]:
    repo = site.catalog.get_repo(name)
    chain = site.catalog.key_chain()  # a mirror shows its upstream's key
    key = chain[-1].new if chain else site.public_key
    return {**repo.to_json(), "public_key": key, "key_fingerprint": fingerprint(key),
            "published_revision": site.publisher.published_revision(name),
            "mirror_of": site.mirror_of}


@router.get("/repos")
def list_repos(site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    visible = [r for r in site.catalog.list_repos() if role_on(site.catalog, who, r)]
    return {"repos": [r.to_json() for r in visible]}


@router.post("/repos", status_code=201)
def create_repo(body: RepoCreate, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    site.check_writable()
    site.catalog.create_repo(body.name, public=body.public, description=body.description,
                             actor=who.name)
    site.publish(body.name)
    return _repo_json(site, body.name)


@router.get("/repos/{repo}")
def show_repo(repo: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    repo_for(site, who, repo, Role.READ)
    return _repo_json(site, repo)


@router.patch("/repos/{repo}")
def update_repo(repo: str, body: RepoPatch, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    repo_for(site, who, repo, Role.ADMIN)
    given = body.model_dump(exclude_unset=True)
    site.catalog.update_repo(repo, actor=who.name, **given)
    site.reads.forget(repo)
    return _repo_json(site, repo)


@router.delete("/repos/{repo}")
def delete_repo(repo: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    site.catalog.delete_repo(repo, actor=who.name)
    site.reads.forget(repo)
    site.publisher.remove(repo)
    return {"deleted": repo}


@router.get("/repos/{repo}/revisions")
def list_revisions(
    repo: str, site: SiteDep, who: PrincipalDep, limit: int = 50, before: int | None = None
) -> dict[str, Any]:
    repo_for(site, who, repo, Role.READ)
    revs = site.catalog.list_revisions(repo, limit=max(1, min(limit, 1000)), before=before)
    return {"revisions": [r.to_json() for r in revs]}


@router.get("/repos/{repo}/revisions/{number}")
def show_revision(repo: str, number: int, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    repo_for(site, who, repo, Role.READ)
    return site.catalog.get_revision(repo, number).to_json()


@router.get("/repos/{repo}/tree")
def tree(
    repo: str, site: SiteDep, who: PrincipalDep, rev: int | None = None, prefix: str = "",
    after: str = "", limit: int = 5000,
) -> dict[str, Any]:
    repo_for(site, who, repo, Role.READ)
    limit = max(1, min(limit, 20000))
    number, entries = site.catalog.tree_page(
        repo, rev, prefix=clean_path(prefix), after=after, limit=limit
    )
    nxt = entries[-1].path if len(entries) == limit else None
    return {"revision": number, "entries": [e.to_json() for e in entries], "next": nxt}


@router.get("/repos/{repo}/entry")
def entry(
    repo: str, path: str, site: SiteDep, who: PrincipalDep, rev: int | None = None
) -> dict[str, Any]:
    repo_for(site, who, repo, Role.READ)
    found = site.catalog.lookup(repo, normalize_path(path), rev)
    if found is None:
        raise NotFound(f"{path} is not in {repo}" + (f" at revision {rev}" if rev else ""))
    return found.to_json()


@router.get("/repos/{repo}/history")
def history(repo: str, path: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    repo_for(site, who, repo, Role.READ)
    versions = site.catalog.history(repo, normalize_path(path))
    if not versions:
        raise NotFound(f"{path} has never been in {repo}")
    return {"path": path, "versions": [v.to_json() for v in versions]}


@router.get("/repos/{repo}/diff")
def diff(
    repo: str, site: SiteDep, who: PrincipalDep, prefix: str = "",
    from_rev: Annotated[int, Query(alias="from")] = 0,
    to_rev: Annotated[int | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    repo_for(site, who, repo, Role.READ)
    if to_rev is None:
        to_rev = site.catalog.get_repo(repo).head
    items = site.catalog.diff(repo, from_rev, to_rev, clean_path(prefix))
    return {"from": from_rev, "to": to_rev, "changes": [i.to_json() for i in items]}


@router.post("/repos/{repo}/rollback", status_code=201)
def rollback_repo(
    repo: str, body: RollbackBody, site: SiteDep, who: PrincipalDep
) -> dict[str, Any]:
    path = normalize_path(body.path) if body.path else None
    repo_for(site, who, repo, Role.WRITE if path else Role.ADMIN)
    result = rollback(site, repo, body.to_rev, author=who.name, path=path,
                      message=body.message)
    return {"revision": result.revision.to_json(), "created": result.created}


@router.post("/repos/{repo}/retention")
def apply_retention(repo: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    repo_for(site, who, repo, Role.ADMIN)
    dropped = site.catalog.apply_retention(repo, actor=who.name)
    site.publish(repo)
    return {"oldest_kept": site.catalog.get_repo(repo).oldest_kept, "entries_dropped": dropped}
