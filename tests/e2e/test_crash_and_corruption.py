"""Failures: a corrupt blob on disk, a server killed with SIGKILL in the middle of a push."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import uuid
from pathlib import Path

import httpx

from tests.conftest import BOTH_CATALOGS, RunningSite, SiteProcess
from tests.e2e.protocol import push_files

pytestmark = BOTH_CATALOGS


def _blob_file(site_dir: Path, sha: str) -> Path:
    found = list((site_dir / "blobs").rglob(sha))
    assert found, f"blob {sha} not on disk"
    return found[0]


def test_corrupt_blob_is_an_error_never_wrong_bytes(running_site: RunningSite) -> None:
    data = random.Random(3).randbytes(200_000)
    sha = hashlib.sha256(data).hexdigest()
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "cor"}).raise_for_status()
        push_files(c, "cor", {"f.bin": data})
        assert c.get("/cor/f.bin").content == data  # verified once, remembered
        blob = _blob_file(running_site.site_dir, sha)
        blob.chmod(0o644)
        with blob.open("r+b") as fh:
            fh.seek(1000)
            fh.write(b"\x00ROTTEN\x00")
        r = c.get("/cor/f.bin")
        assert r.status_code == 500
        assert r.json()["error"] == "integrity"
        assert b"ROTTEN" not in r.content
        ranged = c.get("/cor/f.bin", headers={"range": "bytes=990-1020"})
        assert ranged.status_code == 500


def _slow_push(url: str, token: str, files: dict[str, bytes], commit_id: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    # the server dies under us: an HTTP error is expected
    with httpx.Client(base_url=url, headers=headers) as c, contextlib.suppress(httpx.HTTPError):
        push_files(c, "crash", files, commit_id=commit_id)


def test_kill9_during_push_then_retry_completes(
    site_process: tuple[SiteProcess, str],
) -> None:
    proc, token = site_process
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=proc.url, headers=headers, timeout=60) as c:
        c.post("/api/v1/repos", json={"name": "crash"}).raise_for_status()
        push_files(c, "crash", {"base.txt": b"base"})
    rng = random.Random(5)
    files = {f"dir{i % 7}/file{i}.bin": rng.randbytes(64 * 1024 + i) for i in range(300)}
    commit_id = str(uuid.uuid4())
    pusher = threading.Thread(target=_slow_push, args=(proc.url, token, files, commit_id))
    pusher.start()
    chunks_dir = proc.site_dir / "blobs" / "chunks"
    for _ in range(2000):  # wait until the upload is under way, then kill
        if chunks_dir.exists() and sum(1 for _ in chunks_dir.rglob("*") if _.is_file()) > 20:
            break
        threading.Event().wait(0.01)
    proc.kill()
    pusher.join(timeout=60)
    for blob in (proc.site_dir / "blobs" / "blobs").rglob("*"):
        if blob.is_file():  # no partial blob is ever visible under its name
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    proc.start()
    with httpx.Client(base_url=proc.url, headers=headers, timeout=120) as c:
        head = c.get("/api/v1/repos/crash").json()["head"]
        assert head in (1, 2)  # either nothing or everything, never half
        if head == 1:
            assert c.get("/crash/dir0/file0.bin").status_code == 404
        result, _ = push_files(c, "crash", files, commit_id=commit_id)
        assert result["revision"]["number"] == 2
        for path, data in files.items():
            assert c.get(f"/crash/{path}").content == data
        assert c.get("/crash/base.txt").content == b"base"
        assert c.get("/api/v1/audit/verify").json()["ok"] is True
    leftovers = [p for p in (proc.site_dir / "published").rglob("*.tain-tmp")]
    assert leftovers == []
    assert os.path.islink(proc.site_dir / "published" / "crash")
