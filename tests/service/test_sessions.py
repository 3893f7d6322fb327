"""Console sign-in on a real site with a fake clock: sessions end when they expire or
go idle, failed sign-ins lock a user out for the configured time, a new password
ends the old sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.config import CONFIG_NAME, load
from tain.errors import AuthError, TooManyAttempts
from tain.service.passwords import check_password, hash_password
from tain.service.sessions import SessionManager, csrf_matches, csrf_token
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tests.catalog.conftest import FakeClock

PASSWORD = "a long password"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def site(tmp_path: Path, clock: FakeClock) -> Iterator[Site]:
    site_dir = tmp_path / "site"
    create_site(site_dir, listen="127.0.0.1:1", admin="admin", env={})
    with (site_dir / CONFIG_NAME).open("a") as config:
        config.write('\n[console]\nsession_lifetime = "8h"\nidle_timeout = "30m"\n'
                     'max_failed_logins = 2\nlockout = "10m"\n')
    opened = open_site(load(site_dir, {}), clock=clock)
    opened.catalog.set_password("admin", hash_password(PASSWORD), actor="test")
    try:
        yield opened
    finally:
        opened.close()


def test_a_session_lives_until_idle_or_expired(site: Site, clock: FakeClock) -> None:
    manager = SessionManager(site)
    secret, session = manager.sign_in("admin", PASSWORD, "10.0.0.1")
    assert session.user.name == "admin" and session.expires_at == clock.now + 8 * 3600
    for _ in range(20):  # used every 25 minutes: never idle for 30
        clock.advance(25 * 60)
        if manager.resume(secret) is None:
            break
    assert clock.now - session.created_at == 8 * 3600 + 20 * 60  # ended at its expiry
    second, _ = manager.sign_in("admin", PASSWORD, "10.0.0.1")
    clock.advance(31 * 60)
    assert manager.resume(second) is None  # idle too long
    assert manager.resume(None) is None and manager.resume("x" * 500) is None


def test_sign_out_and_new_password_end_sessions(site: Site) -> None:
    manager = SessionManager(site)
    first, _ = manager.sign_in("admin", PASSWORD, "a")
    second, _ = manager.sign_in("admin", PASSWORD, "a")
    manager.sign_out(first)
    assert manager.resume(first) is None and manager.resume(second) is not None
    site.catalog.set_password("admin", hash_password("another password"), actor="admin")
    assert manager.resume(second) is None
    with pytest.raises(AuthError):
        manager.sign_in("admin", PASSWORD, "a")


def test_failures_lock_out_the_user_then_let_them_in(site: Site, clock: FakeClock) -> None:
    manager = SessionManager(site)
    for _ in range(2):
        with pytest.raises(AuthError, match="wrong user name or password"):
            manager.sign_in("admin", "guess", "10.0.0.9")
    with pytest.raises(TooManyAttempts, match="try again in 600 s"):
        manager.sign_in("admin", PASSWORD, "10.0.0.10")  # another address: still locked
    clock.advance(600)
    _, session = manager.sign_in("admin", PASSWORD, "10.0.0.10")
    assert session.address == "10.0.0.10"
    entry = site.catalog.audit_entries(action="console.login", limit=1)[-1]
    assert entry.details["address"] == "10.0.0.10"


def test_an_address_is_locked_after_many_failures_on_many_names(site: Site) -> None:
    manager = SessionManager(site)
    for n in range(8):  # 2 per name, 4 x 2 per address
        with pytest.raises(AuthError):
            manager.sign_in(f"user{n}", "guess", "10.0.0.66")
    with pytest.raises(TooManyAttempts):
        manager.sign_in("admin", PASSWORD, "10.0.0.66")
    manager.sign_in("admin", PASSWORD, "10.0.0.67")


def test_passwords_and_csrf_tokens() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert check_password(stored, PASSWORD)
    assert not check_password(stored, PASSWORD + "x")
    assert not check_password(None, PASSWORD)
    assert not check_password("not a hash", PASSWORD)
    with pytest.raises(Exception, match="at least 8"):
        hash_password("short")
    assert csrf_matches("secret", csrf_token("secret"))
    assert not csrf_matches("secret", csrf_token("other"))
    assert not csrf_matches("secret", None) and not csrf_matches("secret", "")
