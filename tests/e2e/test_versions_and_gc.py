"""Rollback, retention and garbage collection on a real site."""

from __future__ import annotations

import dataclasses

from tests.conftest import BOTH_CATALOGS, RunningSite
from tests.e2e.protocol import push_files

pytestmark = BOTH_CATALOGS


def test_rollback_of_a_file_and_of_the_repository(running_site: RunningSite) -> None:
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "rb"}).raise_for_status()
        push_files(c, "rb", {"a": b"a1", "sub/b": b"b1"})
        push_files(c, "rb", {"a": b"a2", "sub/b": b"b2", "new": b"n"})
        r = c.post("/api/v1/repos/rb/rollback", json={"to_rev": 1, "path": "a"})
        assert r.status_code == 201, r.text
        assert r.json()["revision"]["number"] == 3
        assert c.get("/rb/a").content == b"a1"
        assert c.get("/rb/sub/b").content == b"b2"
        r = c.post("/api/v1/repos/rb/rollback", json={"to_rev": 1})
        assert r.json()["revision"]["number"] == 4
        assert c.get("/rb/sub/b").content == b"b1"
        assert c.get("/rb/new").status_code == 404
        assert c.get("/rb/new", params={"rev": 2}).content == b"n"  # nothing was rewritten
        again = c.post("/api/v1/repos/rb/rollback", json={"to_rev": 1})
        assert again.status_code == 409


def test_retention_and_gc_keep_exactly_what_is_referenced(running_site: RunningSite) -> None:
    assert running_site.site is not None
    site = running_site.site
    site.config = dataclasses.replace(site.config, gc_grace_seconds=0)
    versions = [f"version {i}".encode() * 1000 for i in range(4)]
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "ret"}).raise_for_status()
        c.patch("/api/v1/repos/ret", json={"keep_last": 2}).raise_for_status()
        for v in versions:
            push_files(c, "ret", {"f.bin": v, "same.bin": b"constant"})
        dry = c.post("/api/v1/gc", json={"dry_run": True}).json()
        assert dry["blobs_deleted"] == 0  # retention not applied in a dry run
        report = c.post("/api/v1/gc", json={}).json()
        assert report["repos"]["ret"] > 0
        assert report["blobs_deleted"] == 2
        import hashlib

        shas = [hashlib.sha256(v).hexdigest() for v in versions]
        kept = site.store.has_blobs([*shas, hashlib.sha256(b"constant").hexdigest()])
        assert kept == {shas[2], shas[3], hashlib.sha256(b"constant").hexdigest()}
        gone = c.get("/ret/f.bin", params={"rev": 1})
        assert gone.status_code == 404 and "retention" in gone.json()["message"]
        assert c.get("/ret/f.bin", params={"rev": 3}).content == versions[2]
        assert c.get("/ret/f.bin").content == versions[3]
        assert c.get("/ret/same.bin").content == b"constant"
        assert [r["number"] for r in c.get("/api/v1/repos/ret/revisions").json()["revisions"]] == [
            4, 3,
        ]
        audit = c.get("/api/v1/audit", params={"action": "gc"}).json()["entries"]
        assert len(audit) == 1
