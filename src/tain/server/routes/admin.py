"""Site-level administration: users, tokens, grants, audit log, gc, whoami."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

import tain
from tain.catalog.models import Role
from tain.core.paths import check_user_name
from tain.errors import Forbidden, UsageError
from tain.server.deps import PrincipalDep, SiteDep
from tain.service.auth import Principal, new_token, require_admin
from tain.service.gc import collect_garbage
from tain.service.passwords import hash_password

router = APIRouter(prefix="/api/v1", tags=["site"])


class UserCreate(BaseModel):
    name: str
    is_admin: bool = False


class TokenCreate(BaseModel):
    user: str | None = None
    name: str = "cli"
    expires_in_days: float | None = None


class GrantBody(BaseModel):
    user: str
    repo: str
    role: str | None


class GcBody(BaseModel):
    dry_run: bool = False


@router.get("/site")
def site_info(site: SiteDep) -> dict[str, Any]:
    return {"version": tain.__version__, "time": site.clock(),
            "repos": len(site.catalog.list_repos())}


@router.get("/whoami")
def whoami(site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    grants = site.catalog.list_grants(user=who.user.name) if who.user else []
    return {"user": who.name, "is_admin": who.is_admin, "token_id": who.token_id,
            "grants": [g.to_json() for g in grants]}


@router.get("/users")
def list_users(site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    return {"users": [u.to_json() for u in site.catalog.list_users()]}


@router.post("/users", status_code=201)
def add_user(body: UserCreate, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    return site.catalog.create_user(body.name, is_admin=body.is_admin, actor=who.name).to_json()


@router.delete("/users/{name}")
def remove_user(name: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    if who.user and who.user.name == name:
        raise UsageError("you cannot remove yourself", hint="use another admin's token")
    site.catalog.delete_user(name, actor=who.name)
    return {"deleted": name}


def _may_manage_tokens_of(who: Principal, user: str) -> None:
    """Users manage their own tokens; a site admin manages everyone's."""
    if who.user is None or who.user.name != user:
        require_admin(who)


@router.get("/tokens")
def list_tokens(site: SiteDep, who: PrincipalDep, user: str | None = None) -> dict[str, Any]:
    if not who.is_admin:
        _may_manage_tokens_of(who, user or who.name)
        user = who.name
    return {"tokens": [t.to_json() for t in site.catalog.list_tokens(user)]}


@router.post("/tokens", status_code=201)
def create_token(body: TokenCreate, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    user = check_user_name(body.user or who.name)
    _may_manage_tokens_of(who, user)
    if body.expires_in_days is not None and body.expires_in_days <= 0:
        raise UsageError("expires_in_days must be positive")
    expires = site.clock() + body.expires_in_days * 86400 if body.expires_in_days else None
    secret, digest = new_token()
    token = site.catalog.create_token(user, name=body.name, token_hash=digest,
                                      expires_at=expires, actor=who.name)
    return {**token.to_json(), "token": secret}


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: int, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    owned = {t.id for t in site.catalog.list_tokens(who.user.name)} if who.user else set()
    if not who.is_admin and token_id not in owned:
        raise Forbidden("only a site admin may revoke another user's token")
    return site.catalog.revoke_token(token_id, actor=who.name).to_json()


@router.get("/grants")
def list_grants(
    site: SiteDep, who: PrincipalDep, user: str | None = None, repo: str | None = None
) -> dict[str, Any]:
    require_admin(who)
    return {"grants": [g.to_json() for g in site.catalog.list_grants(user=user, repo=repo)]}


@router.put("/grants")
def set_grant(body: GrantBody, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    role = None if body.role in (None, "none") else Role.parse(body.role or "")
    site.catalog.set_grant(body.user, body.repo, role, actor=who.name)
    return {"user": body.user, "repo": body.repo, "role": str(role) if role else None}


@router.get("/audit")
def audit(
    site: SiteDep, who: PrincipalDep, actor: str | None = None, action: str | None = None,
    target: str | None = None, since: float | None = None, limit: int = 100, after: int = 0,
) -> dict[str, Any]:
    require_admin(who)
    records = site.catalog.audit_entries(
        actor=actor, action=action, target=target, since=since,
        limit=max(1, min(limit, 10000)), after_seq=after,
    )
    return {"entries": [asdict(r) for r in records]}


@router.get("/audit/verify")
def audit_verify(site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    count, problems = site.catalog.verify_audit()
    return {"entries": count, "ok": not problems, "problems": problems}


@router.post("/gc")
def gc(body: GcBody, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    return collect_garbage(site, actor=who.name, dry_run=body.dry_run).to_json()


class PasswordBody(BaseModel):
    password: str | None  # None removes it: no console sign-in


@router.put("/users/{name}/password")
def set_password(name: str, body: PasswordBody, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    """Set (or remove) the console password of ``name``: a site admin for anyone,
    a user for themselves. Audited; ends the user's console sessions."""
    _may_manage_tokens_of(who, name)
    digest = hash_password(body.password) if body.password is not None else None
    site.catalog.set_password(name, digest, actor=who.name)
    return {"user": name, "password_set": digest is not None}
