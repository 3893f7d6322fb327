"""The catalog's console part on SQLite and PostgreSQL: passwords, sessions (expiry,
idle timeout, cascade on user removal), commit activity and audit paging."""

from __future__ import annotations

import pytest

from tain.catalog.sql import SqlCatalog
from tain.core.manifest import Change, Entry, Kind
from tain.errors import NotFound
from tests.catalog import conftest as fixtures
from tests.catalog.conftest import FakeClock

backend = fixtures.backend
db_url = fixtures.db_url
clock = fixtures.clock
catalog = fixtures.catalog

HOUR = 3600.0


def new_user(cat: SqlCatalog, name: str = "alice") -> int:
    return cat.create_user(name, is_admin=False, actor="t").id


def test_password_is_stored_audited_and_ends_sessions(
    catalog: SqlCatalog, clock: FakeClock,
) -> None:
    uid = new_user(catalog)
    assert catalog.password_of("alice") == (catalog.get_user("alice"), None)
    assert catalog.password_of("nobody") is None
    catalog.create_session("s1", uid, expires_at=clock.now + HOUR, address="1.2.3.4")
    catalog.set_password("alice", "$argon2id$fake", actor="admin")
    found = catalog.password_of("alice")
    assert found is not None and found[1] == "$argon2id$fake"
    assert catalog.find_session("s1", idle_timeout=HOUR) is None
    last = catalog.audit_entries(limit=1)[-1]
    assert (last.actor, last.action, last.target) == ("admin", "user.passwd", "alice")
    catalog.set_password("alice", None, actor="admin")
    assert catalog.audit_entries(limit=1)[-1].action == "user.passwd.clear"
    with pytest.raises(NotFound):
        catalog.set_password("nobody", "x", actor="admin")


def test_sessions_expire_and_go_idle(catalog: SqlCatalog, clock: FakeClock) -> None:
    uid = new_user(catalog)
    catalog.create_session("live", uid, expires_at=clock.now + 10 * HOUR, address="a")
    catalog.create_session("short", uid, expires_at=clock.now + HOUR, address="a")
    session = catalog.find_session("live", idle_timeout=2 * HOUR)
    assert session is not None and session.user.name == "alice"
    clock.advance(HOUR)
    assert catalog.find_session("short", idle_timeout=2 * HOUR) is None  # expired
    catalog.touch_session("live")
    clock.advance(1.5 * HOUR)
    assert catalog.find_session("live", idle_timeout=2 * HOUR) is not None
    clock.advance(HOUR)  # 2.5 h since the touch
    assert catalog.find_session("live", idle_timeout=2 * HOUR) is None
    assert catalog.purge_sessions(idle_timeout=2 * HOUR) == 2


def test_session_rows_go_with_their_user(catalog: SqlCatalog, clock: FakeClock) -> None:
    uid = new_user(catalog, "bob")
    catalog.create_session("b", uid, expires_at=clock.now + HOUR, address="a")
    catalog.delete_user("bob", actor="admin")
    assert catalog.find_session("b", idle_timeout=HOUR) is None
    catalog.delete_session("b")  # deleting a missing session is a no-op


def test_commit_activity_counts_new_bytes_per_revision(
    catalog: SqlCatalog, clock: FakeClock,
) -> None:
    catalog.create_repo("docs", public=False, actor="t")
    catalog.add_blobs([("a" * 64, 100, []), ("b" * 64, 7, [])])
    a = Entry("a.bin", Kind.FILE, 0o644, 1, "a" * 64, 100)
    b = Entry("b.bin", Kind.FILE, 0o644, 1, "b" * 64, 7)
    catalog.commit("docs", [Change("put", "a.bin", a)], author="t")
    clock.advance(HOUR)
    catalog.commit("docs", [Change("put", "b.bin", b)], author="t")
    catalog.commit("docs", [Change("delete", "a.bin")], author="t")
    rows = catalog.commit_activity(since=clock.now - 2 * HOUR)
    assert [(r.repo, r.number, r.bytes_added) for r in rows] == [
        ("docs", 1, 100), ("docs", 2, 7), ("docs", 3, 0)]
    assert rows[1].files == 2 and rows[2].bytes == 7
    assert [r.number for r in catalog.commit_activity(since=clock.now - HOUR / 2)] == [2, 3]


def test_audit_page_goes_back_from_the_newest(catalog: SqlCatalog) -> None:
    for n in range(5):
        catalog.record_event("alice" if n % 2 else "bob", f"thing.{n}", f"t{n}")
    first = catalog.audit_page(limit=2)
    assert [e.action for e in first] == ["thing.4", "thing.3"]
    older = catalog.audit_page(limit=2, before_seq=first[-1].seq)
    assert [e.action for e in older] == ["thing.2", "thing.1"]
    assert [e.target for e in catalog.audit_page(actor="alice")] == ["t3", "t1"]
    assert [e.target for e in catalog.audit_page(action="thing.*", target="t4")] == ["t4"]
