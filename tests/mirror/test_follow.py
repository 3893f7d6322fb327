"""A mirror follows its primary: same revisions, same bytes, refuses writes."""

from __future__ import annotations

import hashlib

from tests.mirror.conftest import Sites, head_of, put, wait_for


def _tree(site, repo, rev):  # type: ignore[no-untyped-def]
    with site.client() as c:
        body = c.get(f"/api/v1/repos/{repo}/tree", params={"rev": rev}).json()
    return {e["path"]: e.get("sha256") for e in body["entries"]}


def test_first_sync_and_incremental(sites: Sites) -> None:
    primary = sites.new("primary")
    with primary.client() as c:
        assert c.post("/api/v1/repos", json={"name": "deb", "public": True}).status_code == 201
    assert put(primary, "deb", "a/one.txt", b"one").status_code == 201
    assert put(primary, "deb", "a/two.txt", b"two").status_code == 201
    mirror = sites.new("mirror", mirror_of=primary)
    wait_for(lambda: head_of(mirror, "deb") == 2)
    assert put(primary, "deb", "b.bin", b"\0" * 100_000).status_code == 201
    wait_for(lambda: head_of(mirror, "deb") == 3)
    for rev in (1, 2, 3):
        assert _tree(mirror, "deb", rev) == _tree(primary, "deb", rev)
    with mirror.anonymous() as c:
        got = c.get("/deb/b.bin").content
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(b"\0" * 100_000).hexdigest()
    refused = put(mirror, "deb", "x.txt", b"x")
    assert refused.status_code == 409
    assert primary.url in refused.json()["message"]
