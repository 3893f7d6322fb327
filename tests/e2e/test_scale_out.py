"""Scale-out: two ``tain serve`` processes sharing one PostgreSQL catalog and one S3
bucket, taking concurrent pushes to one repository from several clients.

Every push asks what is missing on one server, uploads chunks to the next and commits
on the one after, with ``base_rev`` set, retrying when the head moved (409 conflict).
At the end: revisions 1..N exist once each, each push is exactly one of them, every
revision's tree is exactly what was pushed up to it, every file is downloadable with
the right SHA-256 from both servers, and the audit chain verifies.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tain.service.setup import create_site
from tests.conftest import SiteProcess, free_port
from tests.e2e.protocol import frames, put_change
from tests.pg import fresh_pg_database
from tests.s3 import MotoServer, use_s3

pytestmark = pytest.mark.postgres

CLIENTS = 4
PUSHES_PER_CLIENT = 5
REPO = "shared"
ATTEMPTS = 50


@dataclass(frozen=True)
class Push:
    client: int
    number: int
    files: dict[str, bytes]


@dataclass
class Cluster:
    urls: list[str]
    token: str

    def client(self, i: int) -> httpx.Client:
        return httpx.Client(base_url=self.urls[i % len(self.urls)], timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture
def cluster(tmp_path: Path, moto: MotoServer, s3_bucket: str) -> Iterator[Cluster]:
    """Two site dirs made from one (same key, same catalog, same bucket), two servers."""
    with fresh_pg_database() as database_url:
        env = {"TAIN_DATABASE_URL": database_url}
        first = tmp_path / "site-a"
        token = create_site(first, listen="127.0.0.1:8080", admin="admin", env=env)
        use_s3(first, moto.config(s3_bucket, prefix="cluster"), publish=False)
        second = tmp_path / "site-b"
        shutil.copytree(first, second)
        servers = [SiteProcess(d, free_port(), env=env) for d in (first, second)]
        try:
            for server in servers:
                server.start()
            yield Cluster([s.url for s in servers], token)
        finally:
            for server in servers:
                server.stop()


def make_push(client: int, number: int) -> Push:
    rng = random.Random(client * 1000 + number)
    files = {
        f"c{client}/p{number}/a.bin": rng.randbytes(rng.randint(1, 300_000)),
        f"c{client}/p{number}/b.txt": f"client {client} push {number}\n".encode(),
        # The same bytes pushed by every client at once: one blob, built concurrently.
        f"c{client}/p{number}/same.bin": random.Random(number).randbytes(200_000),
    }
    return Push(client, number, files)


def push_through(cluster: Cluster, push: Push) -> int:
    """Push via three servers in turn; retry the commit while the head moves."""
    changes = [put_change(path, data) for path, data in push.files.items()]
    chunks: dict[str, bytes] = {}
    for change, data in zip(changes, push.files.values(), strict=True):
        offset = 0
        for digest, length in change["chunks"]:
            chunks[digest] = data[offset : offset + length]
            offset += length
    commit_id = str(uuid.uuid4())
    turn = push.client + push.number
    for _ in range(ATTEMPTS):
        with (
            cluster.client(turn) as ask,
            cluster.client(turn + 1) as send,
            cluster.client(turn + 2) as commit,
        ):
            missing = ask.post(f"/api/v1/repos/{REPO}/missing",
                               json={"blobs": [], "chunks": list(chunks)})
            missing.raise_for_status()
            wanted = {d: chunks[d] for d in missing.json()["chunks"]}
            if wanted:
                send.post(f"/api/v1/repos/{REPO}/chunks", content=frames(wanted),
                          headers={"content-type": "application/x-tain-chunks+zstd"},
                          ).raise_for_status()
            head = commit.get(f"/api/v1/repos/{REPO}").json()["head"]
            body = {"changes": changes, "message": f"c{push.client} p{push.number}",
                    "commit_id": commit_id, "base_rev": head}
            done = commit.post(f"/api/v1/repos/{REPO}/commits", json=body)
        if done.status_code == 409:  # the head moved (or a chunk vanished): again
            turn += 1
            continue
        done.raise_for_status()
        return int(done.json()["revision"]["number"])
    raise AssertionError(f"push {push.client}/{push.number} did not land in {ATTEMPTS} attempts")


def tree_at(client: httpx.Client, rev: int) -> dict[str, str]:
    entries: dict[str, str] = {}
    after: str | None = None
    while True:
        params: dict[str, Any] = {"rev": rev, "limit": 5000}
        if after:
            params["after"] = after
        page = client.get(f"/api/v1/repos/{REPO}/tree", params=params).json()
        entries |= {e["path"]: e["sha256"] for e in page["entries"] if e["kind"] == "file"}
        after = page["next"]
        if not after:
            return entries


def test_two_servers_one_catalog_one_bucket_concurrent_pushes(cluster: Cluster) -> None:
    with cluster.client(0) as admin:
        admin.post("/api/v1/repos", json={"name": REPO}).raise_for_status()
    pushes = [make_push(c, n) for c in range(CLIENTS) for n in range(PUSHES_PER_CLIENT)]
    landed: dict[tuple[int, int], int] = {}  # (client, push number) -> revision
    lock = threading.Lock()

    def run_client(client: int) -> None:
        for push in (p for p in pushes if p.client == client):
            number = push_through(cluster, push)
            with lock:
                landed[push.client, push.number] = number

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(run_client, range(CLIENTS)))

    total = len(pushes)
    assert sorted(landed.values()) == list(range(1, total + 1))  # none lost, none twice
    for i in range(2):
        with cluster.client(i) as c:
            listed = c.get(f"/api/v1/repos/{REPO}/revisions", params={"limit": 1000}).json()
            assert [r["number"] for r in listed["revisions"]] == list(range(total, 0, -1))
            assert c.get(f"/api/v1/repos/{REPO}").json()["head"] == total

    # Each revision holds exactly the pushes up to it: nothing half-committed.
    by_number = {number: make_push(*key) for key, number in landed.items()}
    expected: dict[str, str] = {}
    for rev in range(1, total + 1):
        expected |= {p: hashlib.sha256(d).hexdigest() for p, d in by_number[rev].files.items()}
        with cluster.client(rev) as c:
            assert tree_at(c, rev) == expected, f"revision {rev}"

    for i in range(2):
        with cluster.client(i) as c:
            for key, number in landed.items():
                for path, data in make_push(*key).files.items():
                    r = c.get(f"/{REPO}/{path}", params={"rev": number})
                    assert r.status_code == 200, (path, r.text)
                    assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(data).hexdigest()
            audit = c.get("/api/v1/audit/verify").json()
            assert audit["ok"], audit["problems"]
