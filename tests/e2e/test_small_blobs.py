"""Whole small files sent as blobs (``POST /repos/R/blobs``): stored durably at once, so a
commit needs no chunks for them; bad frames are refused and leave nothing behind."""

from __future__ import annotations

import hashlib
import os
import struct
import uuid

import zstandard

from tests.conftest import RunningSite
from tests.e2e.protocol import frames, put_change

HEADERS = {"content-type": "application/x-tain-chunks+zstd"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _commit(c: object, repo: str, files: dict[str, bytes]) -> object:
    import httpx

    assert isinstance(c, httpx.Client)
    changes = [{**put_change(p, d), "chunks": []} for p, d in files.items()]
    return c.post(f"/api/v1/repos/{repo}/commits",
                  json={"changes": changes, "commit_id": str(uuid.uuid4())})


def test_small_files_sent_whole_commit_without_chunks(running_site: RunningSite) -> None:
    files = {f"d/f{i}.txt": os.urandom(100 + i * 37) for i in range(40)}
    files["d/same.txt"] = files["d/f0.txt"]  # one blob for two paths
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "s"}).raise_for_status()
        # a commit without chunks for content the site lacks names the files
        lacking = _commit(c, "s", files)
        assert lacking.status_code == 409 and lacking.json()["details"]["paths"]
        blobs = {_sha(d): d for d in files.values()}
        up = c.post("/api/v1/repos/s/blobs", content=frames(blobs), headers=HEADERS)
        assert up.status_code == 200, up.text
        assert up.json() == {"stored": 40, "bytes": sum(len(d) for d in blobs.values())}
        again = c.post("/api/v1/repos/s/blobs", content=frames(blobs), headers=HEADERS)
        assert again.json() == {"stored": 0, "bytes": 0}  # already held: passed over
        ask = c.post("/api/v1/repos/s/missing",
                     json={"blobs": list(blobs), "chunks": [put_change("x", d)["chunks"][0][0]
                                                             for d in blobs.values()]})
        assert ask.json() == {"blobs": [], "chunks": []}  # the chunk index knows them too
        done = _commit(c, "s", files)
        assert done.status_code == 201, done.text
        for path, data in files.items():
            assert c.get(f"/s/{path}").content == data
    published = running_site.site_dir / "published" / "s" / "d"
    assert (published / "f7.txt").read_bytes() == files["d/f7.txt"]


def test_bad_blob_uploads_store_nothing(running_site: RunningSite) -> None:
    good, bad = b"good bytes", b"bad bytes"
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "b"}).raise_for_status()
        # one frame whose bytes do not hash to its name fails the whole request
        r = c.post("/api/v1/repos/b/blobs", content=frames({_sha(good): good, _sha(b"x"): bad}),
                   headers=HEADERS)
        assert r.status_code == 422 and r.json()["error"] == "digest_mismatch"
        ask = c.post("/api/v1/repos/b/missing", json={"blobs": [_sha(good)]})
        assert ask.json()["blobs"] == [_sha(good)]
        assert c.post("/api/v1/repos/b/blobs", content=b"not zstd",
                      headers=HEADERS).status_code == 400
        torn = zstandard.ZstdCompressor().compress(
            struct.pack(">32sI", bytes.fromhex(_sha(good)), 100) + good)
        assert c.post("/api/v1/repos/b/blobs", content=torn, headers=HEADERS).status_code == 400
        huge = b"x" * (4 * 1024 * 1024 + 1)
        r = c.post("/api/v1/repos/b/blobs", content=frames({_sha(huge): huge}), headers=HEADERS)
        assert r.status_code == 413
        assert c.post("/api/v1/repos/nosuch/blobs", content=frames({_sha(good): good}),
                      headers=HEADERS).status_code == 404
    with running_site.anonymous() as anon:
        r = anon.post("/api/v1/repos/b/blobs", content=frames({_sha(good): good}),
                      headers=HEADERS)
        assert r.status_code == 401
    names = {p.name for p in running_site.site_dir.rglob("*")}
    assert "catalog.sqlite3" in names  # the walk sees the site's files
    assert not any(_sha(good) in n or _sha(bad) in n for n in names)  # no blob
    assert not list((running_site.site_dir / "blobs" / "tmp").glob("*"))  # no temp file
