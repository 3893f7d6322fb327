"""Tokens and authorisation decisions.

Tokens are 256-bit random secrets shown once; the catalog keeps only their SHA-256
(a fast hash is enough for secrets of this entropy; passwords would need argon2).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tain.catalog.base import Catalog
from tain.catalog.models import Repo, Role, User
from tain.errors import AuthError, Forbidden

TOUCH_INTERVAL = 60.0
TOKEN_PREFIX = "tain_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user with the token they used, or anonymous (``user`` None)."""

    user: User | None = None
    token_id: int | None = None

    @property
    def name(self) -> str:
        return self.user.name if self.user else "anonymous"

    @property
    def is_admin(self) -> bool:
        return bool(self.user and self.user.is_admin)


ANONYMOUS = Principal()


def new_token() -> tuple[str, str]:
    """Return (secret to show once, hash to store)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, hash_token(secret)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(catalog: Catalog, authorization: str | None, now: float) -> Principal:
    """Resolve an ``Authorization`` header; no header means anonymous."""
    if not authorization:
        return ANONYMOUS
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthError("the Authorization header must be 'Bearer <token>'")
    found = catalog.find_token(hash_token(secret.strip()))
    if found is None:
        raise AuthError("unknown token", hint="create one with 'tain token create USER'")
    token, user = found
    if token.revoked_at is not None:
        raise AuthError(f"token {token.id} was revoked")
    if not token.active(now):
        raise AuthError(f"token {token.id} has expired", hint="create a new one")
    if token.last_used_at is None or token.last_used_at < now - TOUCH_INTERVAL:
        catalog.touch_token(token.id)  # a write: kept off the path of most requests
    return Principal(user, token.id)


def role_on(catalog: Catalog, principal: Principal, repo: Repo) -> Role | None:
    if principal.is_admin:
        return Role.ADMIN
    granted = catalog.role_of(principal.user.id, repo.name) if principal.user else None
    if repo.public and (granted is None or granted < Role.READ):
        return Role.READ
    return granted


def require_role(catalog: Catalog, principal: Principal, repo: Repo, role: Role) -> None:
    held = role_on(catalog, principal, repo)
    if held is not None and held >= role:
        return
    if principal.user is None:
        raise AuthError(f"{repo.name} needs a token with {role} access",
                        hint="pass --token or set TAIN_TOKEN")
    raise Forbidden(f"{principal.name} lacks {role} access to {repo.name}",
                    hint=f"an admin can run 'tain grant {principal.name} {repo.name} {role}'")


def require_admin(principal: Principal) -> None:
    if principal.user is None:
        raise AuthError("this needs a site admin's token", hint="pass --token or set TAIN_TOKEN")
    if not principal.is_admin:
        raise Forbidden(f"{principal.name} is not a site admin")
