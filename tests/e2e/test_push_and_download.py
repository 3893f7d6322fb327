"""A real site on loopback: push trees, download every file, time travel."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

from tests.conftest import BOTH_CATALOGS, RunningSite
from tests.e2e.protocol import push_files

pytestmark = BOTH_CATALOGS


def make_files(count: int, seed: int = 7) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {}
    for i in range(count):
        depth = rng.randint(0, 3)
        dirs = "/".join(f"d{rng.randint(0, 9)}" for _ in range(depth))
        name = f"{dirs}/f{i}.bin" if dirs else f"f{i}.bin"
        files[name] = rng.randbytes(rng.randint(0, 4096))
    return files


def test_push_thousands_of_files_and_download_each(running_site: RunningSite) -> None:
    files = make_files(2500)
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "pool"}).raise_for_status()
        result, _ = push_files(c, "pool", files)
        assert result["revision"]["number"] == 1
        assert result["revision"]["files"] == len(files)
        for path, data in files.items():
            r = c.get(f"/pool/{path}")
            assert r.status_code == 200, path
            assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(data).hexdigest()
            assert r.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        sums = c.get("/pool/SHA256SUMS").text
    published = running_site.site_dir / "published" / "pool"
    for path, data in files.items():
        assert (published / path).read_bytes() == data
    (running_site.site_dir / "SHA256SUMS").write_text(sums)
    check = subprocess.run(
        ["sha256sum", "--quiet", "-c", str(running_site.site_dir / "SHA256SUMS")],
        cwd=published, capture_output=True, text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(sums.splitlines()) == len(files)


def test_unchanged_push_sends_nothing_and_one_byte_edit_sends_one_chunk(
    running_site: RunningSite,
) -> None:
    big = random.Random(1).randbytes(6 * 1024 * 1024)
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "big"}).raise_for_status()
        _, sent = push_files(c, "big", {"big.iso": big})
        assert sent == len(big)
        again, sent = push_files(c, "big", {"big.iso": big})
        assert sent == 0
        assert again["created"] is False
        edited = bytearray(big)
        edited[3 * 1024 * 1024] ^= 0xFF
        result, sent = push_files(c, "big", {"big.iso": bytes(edited)})
        assert result["revision"]["number"] == 2
        assert 0 < sent <= 2 * 1024 * 1024  # one chunk, at most two around the edit
        assert c.get("/big/big.iso").content == bytes(edited)
        assert c.get("/big/big.iso", params={"rev": 1}).content == big


def test_old_revisions_history_and_diff(running_site: RunningSite) -> None:
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "docs"}).raise_for_status()
        push_files(c, "docs", {"a.txt": b"one", "keep.txt": b"k"})
        push_files(c, "docs", {"a.txt": b"two", "b.txt": b"bee"})
        push_files(c, "docs", {}, deletes=("b.txt",))
        assert c.get("/docs/a.txt", params={"rev": 1}).content == b"one"
        assert c.get("/docs/a.txt").content == b"two"
        assert c.get("/docs/b.txt").status_code == 404
        assert c.get("/docs/b.txt", params={"rev": 2}).content == b"bee"
        history = c.get("/api/v1/repos/docs/history", params={"path": "a.txt"}).json()
        assert [(v["rev_from"], v["rev_to"]) for v in history["versions"]] == [(1, 2), (2, None)]
        diff = c.get("/api/v1/repos/docs/diff", params={"from": 1, "to": 3}).json()
        assert {(d["path"], d["status"]) for d in diff["changes"]} == {("a.txt", "modified")}
        listing = c.get("/docs/", headers={"accept": "application/json"}).json()
        assert [e["name"] for e in listing["entries"]] == ["a.txt", "keep.txt"]
        revs = c.get("/api/v1/repos/docs/revisions").json()["revisions"]
        assert [r["number"] for r in revs] == [3, 2, 1]
        assert all(r["signature"] for r in revs)


def test_range_and_conditional_requests(running_site: RunningSite) -> None:
    data = bytes(range(256)) * 100
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "r", "public": True}).raise_for_status()
        push_files(c, "r", {"x.bin": data})
    with running_site.anonymous() as a:
        etag = a.head("/r/x.bin").headers["etag"]
        part = a.get("/r/x.bin", headers={"range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        multi = a.get("/r/x.bin", headers={"range": "bytes=0-9,-10"})
        assert multi.status_code == 206
        assert multi.headers["content-type"].startswith("multipart/byteranges")
        assert a.get("/r/x.bin", headers={"if-none-match": etag}).status_code == 304
        stale = a.get("/r/x.bin", headers={"range": "bytes=0-9", "if-range": '"' + "0" * 64 + '"'})
        assert stale.status_code == 200 and stale.content == data
        assert a.get("/r/x.bin", headers={"range": f"bytes={len(data)}-"}).status_code == 416


def test_curl_style_put_and_delete(running_site: RunningSite, tmp_path: Path) -> None:
    src = tmp_path / "upload.bin"
    src.write_bytes(os.urandom(300_000))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "up"}).raise_for_status()
        bad = c.put("/up/dir/file.bin", content=src.read_bytes(),
                    headers={"x-tain-sha256": "0" * 64})
        assert bad.status_code == 422
        assert c.get("/api/v1/repos/up").json()["head"] == 0
    token = running_site.token
    out = subprocess.run(
        ["curl", "-sf", "-T", str(src), "-H", f"Authorization: Bearer {token}",
         "-H", f"X-Tain-SHA256: {digest}", f"{running_site.url}/up/dir/file.bin"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    with running_site.client() as c:
        assert c.get("/up/dir/file.bin").content == src.read_bytes()
        assert c.delete("/up/dir").status_code == 200
        assert c.get("/up/dir/file.bin").status_code == 404
        assert c.get("/up/dir/file.bin", params={"rev": 1}).content == src.read_bytes()
