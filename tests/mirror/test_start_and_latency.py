"""A new mirror of a pruned repository starts from a snapshot; a new revision reaches a
mirror through the upstream's notification (not its polling); the follower's catalog
writes on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tain.config import CONFIG_NAME
from tests.mirror.conftest import Sites, head_of, put, trace_of, wait_for
from tests.pg import fresh_pg_database


def _revisions(site, repo: str) -> list[int]:  # type: ignore[no-untyped-def]
    with site.client() as c:
        body = c.get(f"/api/v1/repos/{repo}/revisions", params={"limit": 100}).json()
    return sorted(r["number"] for r in body["revisions"])


def _tree(site, repo: str, rev: int) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    with site.client() as c:
        body = c.get(f"/api/v1/repos/{repo}/tree", params={"rev": rev}).json()
    return [(e["path"], e.get("sha256")) for e in body["entries"]]


def test_snapshot_start_from_the_oldest_kept_revision(sites: Sites) -> None:
    primary = sites.new("primary")
    with primary.client() as c:
        c.post("/api/v1/repos", json={"name": "deb"})
        c.patch("/api/v1/repos/deb", json={"keep_last": 2})
        for i in range(5):
            put(primary, "deb", f"f{i % 3}.txt", f"version {i}".encode())
        assert c.post("/api/v1/repos/deb/retention").json()["oldest_kept"] == 4
    mirror = sites.new("mirror", mirror_of=primary)
    wait_for(lambda: head_of(mirror, "deb") == 5)
    with mirror.client() as c:
        assert c.get("/api/v1/repos/deb").json()["oldest_kept"] == 4
        assert c.get("/api/v1/repos/deb/revisions/3").status_code == 404
    for rev in (4, 5):
        assert _tree(mirror, "deb", rev) == _tree(primary, "deb", rev)
    put(primary, "deb", "f9.txt", b"after the snapshot")  # the chain goes on from it
    wait_for(lambda: head_of(mirror, "deb") == 6)
    assert _tree(mirror, "deb", 6) == _tree(primary, "deb", 6)


def test_a_new_revision_arrives_by_notification(sites: Sites) -> None:
    primary = sites.new("primary")
    with primary.client() as c:
        c.post("/api/v1/repos", json={"name": "deb"})
    put(primary, "deb", "first.txt", b"1")
    created = sites.create("mirror", mirror_of=primary)
    config = created[0] / CONFIG_NAME  # polling alone would take an hour
    config.write_text(config.read_text().replace('poll = "1s"',
                                                 'poll = "1h"\nlong_poll = "1s"'))
    mirror = sites.start(*created)
    wait_for(lambda: head_of(mirror, "deb") == 1)
    put(primary, "deb", "second.txt", b"2")
    wait_for(lambda: head_of(mirror, "deb") == 2, timeout=20)  # well below the poll
    with mirror.client() as c:
        assert c.get("/deb/second.txt").content == b"2"
    assert (mirror.site_dir / "published" / "deb" / "second.txt").read_bytes() == b"2"


@pytest.mark.postgres
def test_follower_writes_on_postgresql(tmp_path: Path) -> None:
    with fresh_pg_database() as url:
        sites = Sites(tmp_path, {})
        try:
            primary = sites.new("primary")
            with primary.client() as c:
                c.post("/api/v1/repos", json={"name": "deb"})
            put(primary, "deb", "a/b.txt", b"on postgres")
            put(primary, "deb", "a/c.txt", b"too")
            sites.env = {"TAIN_DATABASE_URL": url}
            mirror = sites.new("mirror", mirror_of=primary)
            assert mirror.site is not None and mirror.site.catalog.dialect == "postgresql"
            wait_for(lambda: head_of(mirror, "deb") == 2)
            assert _tree(mirror, "deb", 2) == _tree(primary, "deb", 2)
            trace = trace_of(mirror, "deb")
            assert trace is not None and trace["revision"] == 2
        finally:
            sites.stop_all()
