"""A mirror follows its primary: same revision numbers, same change digests, same
bytes at every revision; it refuses writes; it catches up in one run; mirrors follow
mirrors; a corrupt blob or a bad signature from the upstream commits nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import httpx

from tests.conftest import RunningSite
from tests.mirror.conftest import Sites, head_of, put, trace_of, wait_for
from tests.mirror.proxy import rewriting_proxy


def _revisions(site: RunningSite, repo: str) -> list[tuple[int, str, str | None]]:
    with site.client() as c:
        revs = c.get(f"/api/v1/repos/{repo}/revisions", params={"limit": 1000}).json()
    return sorted((r["number"], r["change_digest"], r["signature"]) for r in revs["revisions"])


def _files(site: RunningSite, repo: str, rev: int) -> dict[str, Any]:
    """Every path at ``rev`` with the SHA-256 of the bytes the site serves for it."""
    out: dict[str, Any] = {}
    with site.client() as c:
        entries = c.get(f"/api/v1/repos/{repo}/tree", params={"rev": rev}).json()["entries"]
        for e in entries:
            if e["kind"] == "file":
                body = c.get(f"/{repo}/{e['path']}", params={"rev": rev}).content
                out[e["path"]] = hashlib.sha256(body).hexdigest()
            else:
                out[e["path"]] = (e["kind"], e.get("target"), e["mode"])
    return out


def assert_same(primary: RunningSite, mirror: RunningSite, repo: str) -> None:
    mine = _revisions(primary, repo)
    assert mine and _revisions(mirror, repo) == mine
    for number, _, _ in mine:
        assert _files(mirror, repo, number) == _files(primary, repo, number), number


def _commit(site: RunningSite, repo: str, changes: list[dict[str, Any]]) -> int:
    with site.client() as c:
        r = c.post(f"/api/v1/repos/{repo}/commits", json={"changes": changes})
    assert r.status_code == 201, r.text
    return int(r.json()["revision"]["number"])


def _new_repo(site: RunningSite, name: str = "deb", **settings: Any) -> None:
    with site.client() as c:
        r = c.post("/api/v1/repos", json={"name": name, "public": True})
        assert r.status_code == 201, r.text
        if settings:
            assert c.patch(f"/api/v1/repos/{name}", json=settings).status_code == 200


def test_first_sync_then_add_modify_delete_rename(sites: Sites) -> None:
    primary = sites.new("primary")
    _new_repo(primary)
    assert put(primary, "deb", "a/one.txt", b"one").status_code == 201
    assert put(primary, "deb", "a/two.txt", b"two").status_code == 201
    mirror = sites.new("mirror", mirror_of=primary)
    wait_for(lambda: head_of(mirror, "deb") == 2)
    assert_same(primary, mirror, "deb")

    put(primary, "deb", "b.bin", bytes(range(256)) * 400)  # add
    put(primary, "deb", "a/one.txt", b"one, changed")  # modify
    with primary.client() as c:
        assert c.delete("/deb/a/two.txt").status_code == 200  # delete
        entry = c.get("/api/v1/repos/deb/entry", params={"path": "b.bin"}).json()
    rename = [{"op": "delete", "path": "b.bin"}, {**entry, "op": "put", "path": "c/b.bin"}]
    head = _commit(primary, "deb", rename)
    # a directory replaced by a file and a symlink: the replay-in-order path
    dir_to_file = [{"op": "put", "path": "a", "kind": "file", "mode": 0o644, "mtime_ns": 5,
                    "sha256": entry["sha256"], "size": entry["size"]},
                   {"op": "put", "path": "link", "kind": "symlink", "target": "c/b.bin"}]
    head = _commit(primary, "deb", dir_to_file)
    wait_for(lambda: head_of(mirror, "deb") == head)
    assert_same(primary, mirror, "deb")
    with mirror.anonymous() as c:
        assert c.get("/deb/c/b.bin").content == bytes(range(256)) * 400
    published = mirror.site_dir / "published" / "deb"
    assert (published / "c" / "b.bin").read_bytes() == bytes(range(256)) * 400
    trace = trace_of(mirror, "deb")
    assert trace["revision"] == head and trace["last_error"] is None
    assert trace["upstream"] == primary.url
    trace_file = mirror.site_dir / "published" / ".tain-trace" / "deb"
    assert f"revision: {head}\n" in trace_file.read_text()


def test_mirror_refuses_writes_naming_the_primary(sites: Sites) -> None:
    primary = sites.new("primary")
    _new_repo(primary)
    put(primary, "deb", "f.txt", b"f")
    mirror = sites.new("mirror", mirror_of=primary)
    wait_for(lambda: head_of(mirror, "deb") == 1)
    with mirror.client() as c:
        answers = [
            c.put("/deb/g.txt", content=b"g",
                  headers={"X-Tain-SHA256": hashlib.sha256(b"g").hexdigest()}),
            c.delete("/deb/f.txt"),
            c.post("/api/v1/repos/deb/missing", json={"blobs": [], "chunks": []}),
            c.post("/api/v1/repos/deb/commits", json={"changes": []}),
            c.post("/api/v1/repos/deb/rollback", json={"to_rev": 1}),
            c.post("/api/v1/repos", json={"name": "other"}),
        ]
    for answer in answers:
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "read_only_mirror"
        assert primary.url in answer.json()["message"]
    assert head_of(mirror, "deb") == 1


def test_catch_up_after_downtime_and_multi_hop(sites: Sites) -> None:
    primary = sites.new("primary")
    _new_repo(primary, description="packages", keep_last=500)
    put(primary, "deb", "f0", b"0")
    first = sites.new("first", mirror_of=primary)
    second = sites.new("second", mirror_of=first)  # a mirror of a mirror
    wait_for(lambda: head_of(second, "deb") == 1)
    sites.stop(first)
    for i in range(1, 16):
        put(primary, "deb", f"f{i % 7}", str(i).encode())
    with httpx.Client(base_url=primary.url, timeout=30,
                      headers={"Authorization": f"Bearer {primary.token}"}) as c:
        page = c.get("/api/v1/repos/deb/log", params={"since": 1}).json()
    assert len(page["revisions"]) == 15 and not page["more"]  # one request for all
    first = sites.start(first.site_dir, first.token, int(first.url.rsplit(":", 1)[1]))
    wait_for(lambda: head_of(second, "deb") == 16)
    assert_same(primary, second, "deb")
    with second.client() as c:
        repo = c.get("/api/v1/repos/deb").json()
    assert repo["description"] == "packages" and repo["keep_last"] == 500
    assert repo["public"] is True


def test_corrupt_blob_from_upstream_is_rejected(sites: Sites) -> None:
    primary = sites.new("primary")
    _new_repo(primary)
    put(primary, "deb", "ok.txt", b"fine")
    data = b"the real bytes " * 1000
    put(primary, "deb", "bad.bin", data)
    sha = hashlib.sha256(data).hexdigest()

    def corrupt(path: str, body: bytes) -> bytes:  # an upstream that serves rotten bytes
        return b"X" * len(body) if path.endswith(f"/blobs/{sha}") else body

    with rewriting_proxy(primary.url, corrupt) as url:
        mirror = sites.new("mirror", mirror_of=primary, via=url)
        trace = wait_for(lambda: (t := trace_of(mirror, "deb")) and t["last_error"] and t)
        assert "wrong bytes" in str(trace["last_error"])  # type: ignore[index]
        assert head_of(mirror, "deb") == 0  # the page's revisions: none committed
        assert mirror.site is not None and not mirror.site.catalog.known_blobs([sha])
        assert mirror.site.catalog.known_blobs([hashlib.sha256(b"fine").hexdigest()])


def test_bad_signature_is_rejected(sites: Sites) -> None:
    primary = sites.new("primary")
    _new_repo(primary)
    put(primary, "deb", "one.txt", b"1")
    put(primary, "deb", "two.txt", b"2")
    db = sqlite3.connect(primary.site_dir / "catalog.sqlite3")
    with db:
        db.execute("UPDATE revisions SET signature = ? WHERE number = 2",
                   ("A" * 86 + "==",))
    db.close()
    mirror = sites.new("mirror", mirror_of=primary)
    trace = wait_for(lambda: (t := trace_of(mirror, "deb")) and t["last_error"] and t)
    assert "signature does not verify" in str(trace["last_error"])  # type: ignore[index]
    assert head_of(mirror, "deb") == 0  # the page with revision 2 committed nothing
