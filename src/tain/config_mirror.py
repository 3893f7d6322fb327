"""The ``[mirror]`` and ``[signing]`` sections of ``tain.toml``.

``[mirror]`` makes the site a mirror: it follows ``upstreams`` (tried in order, so a
list gives fallback and multi-hop trees), with a read token given inline or named by
``token_env``; ``repos`` is "all" or a list; ``poll`` is the fallback polling interval
(notifications from the upstream normally wake the follower at once: it waits for
them in long-polls of ``long_poll``, at most 60s). ``key`` pins the upstream's signing
key (a fingerprint or a base64 public key): the follower refuses a key chain that does
not pass through it. ``prune_deleted`` deletes repositories deleted upstream (with
``repos = "all"``) instead of keeping them as they were.
``[signing] expires`` is how long a head statement stays valid; the site re-signs it
when a third of that is left.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tain.errors import UsageError


@dataclass(frozen=True)
class MirrorConfig:
    upstreams: tuple[str, ...]
    token: str | None = None
    repos: tuple[str, ...] | None = None  # None: every repository of the upstream
    poll_seconds: int = 60
    parallel: int = 4  # blob downloads at once
    long_poll_seconds: int = 30  # how long one wait for the upstream's events lasts
    key: str | None = None  # the pinned upstream key: fingerprint or base64 public key
    prune_deleted: bool = False  # delete repositories deleted upstream


@dataclass(frozen=True)
class SigningConfig:
    expires_seconds: int = 7 * 86400


def parse_mirror(table: Mapping[str, Any], env: Mapping[str, str]) -> MirrorConfig | None:
    from tain.config import parse_duration  # tain.config imports this module

    if not table:
        return None
    raw = table.get("upstreams", table.get("upstream", []))
    upstreams = (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, list) else ()
    if not upstreams or not all(isinstance(u, str) and u.startswith(("http://", "https://"))
                                for u in upstreams):
        raise UsageError("[mirror] upstreams must list one or more http(s):// URLs")
    token = table.get("token")
    token_env = table.get("token_env")
    if token_env is not None:
        if not isinstance(token_env, str) or token_env not in env:
            raise UsageError(f"[mirror] token_env names {token_env!r}, which is not set")
        token = env[token_env]
    if token is not None and not isinstance(token, str):
        raise UsageError("[mirror] token must be a string")
    repos = table.get("repos", "all")
    if repos != "all" and not (isinstance(repos, list) and all(isinstance(r, str)
                                                               for r in repos)):
        raise UsageError('[mirror] repos must be "all" or a list of repository names')
    parallel = table.get("parallel", 4)
    if not isinstance(parallel, int) or isinstance(parallel, bool) or not 1 <= parallel <= 64:
        raise UsageError("[mirror] parallel must be a number from 1 to 64")
    prune_deleted = table.get("prune_deleted", False)
    if not isinstance(prune_deleted, bool):
        raise UsageError("[mirror] prune_deleted must be true or false")
    return MirrorConfig(
        upstreams=tuple(u.rstrip("/") for u in upstreams), token=token or None,
        repos=None if repos == "all" else tuple(repos),
        poll_seconds=parse_duration(str(table.get("poll", "60s"))), parallel=parallel,
        long_poll_seconds=parse_duration(str(table.get("long_poll", "30s"))),
        key=check_key(table.get("key")), prune_deleted=prune_deleted,
    )


def check_key(key: object) -> str | None:
    """A pinned key as written: 32 hex digits (a fingerprint) or a base64 Ed25519 key."""
    if key is None:
        return None
    if isinstance(key, str) and len(key) == 32 and all(c in "0123456789abcdef" for c in key):
        return key
    try:
        valid = len(base64.b64decode(str(key), validate=True)) == 32
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(f"[mirror] key must be a key fingerprint (32 hex digits) or a "
                         f"base64 public key, not {str(key)[:60]!r}") from None
    return str(key)


def parse_signing(table: Mapping[str, Any]) -> SigningConfig:
    from tain.config import parse_duration

    expires = parse_duration(str(table.get("expires", "7d")))
    if expires < 60:
        raise UsageError("[signing] expires must be at least 60s")
    return SigningConfig(expires_seconds=expires)


def mirror_section(upstream: str, token: str | None, token_env: str | None,
                   key: str | None = None) -> str:
    """The ``[mirror]`` text ``tain init --mirror-of`` writes."""
    token = (f'token_env = "{token_env}"\n' if token_env
             else f'token = "{token}"\n' if token else "")
    pin = f'key = "{check_key(key)}"\n' if key else ""
    url = upstream.rstrip("/")
    return f'\n[mirror]\nupstreams = ["{url}"]\n{token}{pin}repos = "all"\npoll = "60s"\n'
