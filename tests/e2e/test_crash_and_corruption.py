"""Failures: a corrupt blob on disk, a server killed with SIGKILL in the middle of a push."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
import uuid
from pathlib import Path

import httpx

from tain.core.digests import blake3_hex
from tests.conftest import BOTH_CATALOGS, RunningSite, SiteProcess
from tests.e2e.protocol import frames, push_files, put_change

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


def _commit_quietly(url: str, token: str, body: dict[str, object]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as c, contextlib.suppress(
        httpx.HTTPError
    ):
        c.post("/api/v1/repos/crash/commits", json=body)


def test_kill9_during_a_grouped_commit_of_many_small_files(
    site_process: tuple[SiteProcess, str],
) -> None:
    """The commit of many new small files writes and fsyncs their blobs as one group;
    killed at any point of it, no blob is visible that is not whole, and the same commit
    sent again completes."""
    proc, token = site_process
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(9)
    files = {f"d{i % 20}/f{i}.txt": rng.randbytes(2000 + i) for i in range(600)}
    body = {"changes": [put_change(p, d) for p, d in files.items()],
            "commit_id": str(uuid.uuid4())}
    with httpx.Client(base_url=proc.url, headers=headers, timeout=60) as c:
        c.post("/api/v1/repos", json={"name": "crash"}).raise_for_status()
        push_files(c, "crash", {"base.txt": b"base"})
        items = [(blake3_hex(d), d) for d in files.values()]
        for start in range(0, len(items), 300):
            c.post("/api/v1/repos/crash/chunks",
                   content=frames(dict(items[start : start + 300]))).raise_for_status()
    blobs_dir = proc.site_dir / "blobs"
    committer = threading.Thread(target=_commit_quietly, args=(proc.url, token, body))
    committer.start()
    deadline = time.monotonic() + 60
    while not any((blobs_dir / "tmp").glob("adopt-*")) and time.monotonic() < deadline:
        time.sleep(0.002)  # poll: kill while the group is under way
    proc.kill()
    committer.join(timeout=60)
    for blob in (blobs_dir / "blobs").rglob("*"):
        if blob.is_file():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    proc.start()
    with httpx.Client(base_url=proc.url, headers=headers, timeout=120) as c:
        assert c.get("/api/v1/repos/crash").json()["head"] in (1, 2)
        result, _ = push_files(c, "crash", files, commit_id=str(body["commit_id"]))
        assert result["revision"]["number"] == 2
        for path in list(files)[::37]:
            assert c.get(f"/crash/{path}").content == files[path]
