"""Console sign-in and sessions.

The browser holds a random 256-bit secret in a cookie; the catalog holds its SHA-256
(``console_sessions``), so the session can be ended on the server (sign-out, a new
password, expiry). The CSRF token of a session is derived from its secret, so it needs
no storage and changes with every sign-in. Failed sign-ins are counted per user name
and (more leniently) per address in memory (``FailureLimiter``); the failure path always runs one
argon2 verification, so its timing does not tell whether a user exists.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets

from tain.catalog.sessions import ConsoleSession
from tain.core.ratelimit import FailureLimiter
from tain.errors import AuthError, TooManyAttempts
from tain.service.passwords import check_password
from tain.service.site import Site

TOUCH_INTERVAL = 60.0
ADDRESS_FACTOR = 4  # an address (maybe a NAT of many users) may fail this many times more


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    return hashlib.sha256(b"tain-console-csrf\0" + secret.encode()).hexdigest()


def csrf_matches(secret: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(secret), sent or "")


class SessionManager:
    def __init__(self, site: Site) -> None:
        self.site = site
        cfg = site.config.console
        self.users = FailureLimiter(cfg.max_failures, cfg.lockout_seconds, site.clock)
        self.addresses = FailureLimiter(cfg.max_failures * ADDRESS_FACTOR,
                                        cfg.lockout_seconds, site.clock)

    @property
    def idle(self) -> float:
        return float(self.site.config.console.idle_seconds)

    def sign_in(self, name: str, password: str, address: str) -> tuple[str, ConsoleSession]:
        """Check the password and open a session; returns (cookie secret, session)."""
        user_key = name.lower()
        wait = max(self.users.retry_after(user_key), self.addresses.retry_after(address))
        if wait > 0:
            raise TooManyAttempts(f"too many failed sign-ins; try again in {math.ceil(wait)} s")
        catalog = self.site.catalog
        found = catalog.password_of(name) if 0 < len(name) <= 64 else None
        matched = check_password(found[1] if found else None, password)
        if found is None or not matched:
            self.users.fail(user_key)
            self.addresses.fail(address)
            raise AuthError("wrong user name or password")
        user = found[0]
        self.users.clear(user_key)
        catalog.purge_sessions(idle_timeout=self.idle)
        secret = secrets.token_urlsafe(32)
        expires = self.site.clock() + self.site.config.console.session_seconds
        catalog.create_session(hash_secret(secret), user.id, expires_at=expires,
                               address=address)
        catalog.record_event(user.name, "console.login", user.name, address=address)
        session = catalog.find_session(hash_secret(secret), idle_timeout=self.idle)
        if session is None:  # only if the clock jumped past the expiry just now
            raise AuthError("the new session expired at once; check the site's clock")
        return secret, session

    def resume(self, secret: str | None) -> ConsoleSession | None:
        """The live session of a cookie secret, its ``last_seen`` refreshed at most
        once a minute (a write kept off most requests)."""
        if not secret or len(secret) > 128:
            return None
        session = self.site.catalog.find_session(hash_secret(secret), idle_timeout=self.idle)
        if session is not None and session.last_seen < self.site.clock() - TOUCH_INTERVAL:
            self.site.catalog.touch_session(session.id_hash)
        return session

    def sign_out(self, secret: str) -> None:
        self.site.catalog.delete_session(hash_secret(secret))
