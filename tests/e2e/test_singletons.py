"""Site-wide work done once: two ``tain serve`` processes of one mirror site share a
PostgreSQL catalog (and a blob directory); a third process is the primary they follow.

Only the holder of the "follower" lease replicates, so each blob crosses from the
primary once (a slow link would let two followers both fetch it) and no replay
collides; only the holder of the "alerts" lease checks alerts, so a broken audit chain
reported to a slow webhook (which would let two engines both see the alert as new)
still gets one notification. When the holder is killed (-9), the other process takes
the leases after they expire and carries on following.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tain.config import CONFIG_NAME
from tain.service.setup import create_site
from tests.conftest import SiteProcess, free_port
from tests.mirror.proxy import rewriting_proxy
from tests.monitor.receivers import webhook_receiver
from tests.pg import fresh_pg_database

pytestmark = pytest.mark.postgres
REVISIONS = 2


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})


def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not before the deadline")
        time.sleep(0.05)


def _head(url: str, token: str) -> int:
    with _client(url, token) as c:
        r = c.get("/api/v1/repos/deb")
        return int(r.json()["head"]) if r.status_code == 200 else -1


def _mirror_config(site_dir: Path, *, upstream: str, token: str, blobs: Path, hook: str,
                   name: str) -> None:
    path = site_dir / CONFIG_NAME
    text = path.read_text().replace("[server]\n", '[server]\nlease = "2s"\n', 1)
    text = text.replace('data_dirs = ["blobs"]', f'data_dirs = ["{blobs}"]')
    path.write_text(text + f"""
[mirror]
upstreams = ["{upstream}"]
token = "{token}"
poll = "60s"
long_poll = "5s"

[stats]
site_name = "{name}"

[alerts]
check_every = "1s"
repeat_every = "off"
audit_check_every = "1s"
[alerts.disk_free]
enabled = false
[[alerts.webhook]]
url = "{hook}"
""")


def _sql(database_url: str, statement: str, **params: object) -> sa.Row[object] | None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.first() if result.returns_rows else None
    finally:
        engine.dispose()


def _lease_pid(database_url: str, name: str) -> int | None:
    row = _sql(database_url, "SELECT holder, expires_at FROM health_lease WHERE name = :n",
               n=name)
    if row is None or row.expires_at < time.time():
        return None
    return int(str(row.holder).split(":")[1])


def test_two_processes_replicate_once_alert_once_and_take_over(tmp_path: Path) -> None:
    fetched: Counter[str] = Counter()
    lock = threading.Lock()

    def count(path: str, body: bytes) -> bytes:
        if path.startswith("/api/v1/blobs/"):
            with lock:
                fetched[path.rsplit("/", 1)[1]] += 1
        return body

    def slow_blobs(path: str) -> float:  # a second follower would fetch them meanwhile
        return 0.3 if path.startswith("/api/v1/blobs/") else 0.0

    primary_dir = tmp_path / "primary"
    token = create_site(primary_dir, listen="127.0.0.1:1", admin="admin", env={})
    primary = SiteProcess(primary_dir, free_port())
    nodes: list[SiteProcess] = []
    with fresh_pg_database() as db, webhook_receiver(delay=1.5) as (hook, hooks):
        primary.start()
        try:
            with _client(primary.url, token) as c:
                assert c.post("/api/v1/repos", json={"name": "deb"}).status_code == 201
            with rewriting_proxy(primary.url, count, slow_blobs) as via:
                env = {"TAIN_DATABASE_URL": db}
                first, second = tmp_path / "node-a", tmp_path / "node-b"
                admin = create_site(first, listen="127.0.0.1:1", admin="admin", env=env)
                shutil.copytree(first, second)  # same key, same catalog
                for site_dir in (first, second):
                    _mirror_config(site_dir, upstream=via, token=token, blobs=first / "blobs",
                                   hook=hook, name=site_dir.name)
                shas = [_push(primary.url, token, n) for n in range(1, REVISIONS + 1)]
                nodes = [SiteProcess(d, free_port(), env=env) for d in (first, second)]
                starting = [threading.Thread(target=node.start) for node in nodes]
                for thread in starting:  # at once: both followers would sync from the start
                    thread.start()
                for thread in starting:
                    thread.join()
                _replicated_once(nodes, admin, shas, fetched)
                _sql(db, "UPDATE audit SET actor = 'forger' WHERE seq = 1")
                [fired] = hooks.wait_for(1, timeout=15)
                assert fired["event"] == "firing" and fired["alert"]["rule"] == "audit_broken"
                deadline = time.monotonic() + 2  # both engines check every second
                while time.monotonic() < deadline:
                    assert len(hooks.bodies) == 1, hooks.bodies
                    time.sleep(0.1)
                _take_over(primary.url, token, nodes, admin, db)
        finally:
            for node in nodes:
                node.stop()
            primary.stop()


def _push(url: str, token: str, n: int) -> str:
    data = os.urandom(1 << 20)
    with _client(url, token) as c:
        r = c.put(f"/deb/file{n}.bin", content=data,
                  headers={"X-Tain-SHA256": hashlib.sha256(data).hexdigest()})
        assert r.status_code == 201, r.text
    return hashlib.sha256(data).hexdigest()


def _replicated_once(nodes: list[SiteProcess], admin: str, shas: list[str],
                     fetched: Counter[str]) -> None:
    for node in nodes:
        _wait(lambda n=node: _head(n.url, admin) == REVISIONS, f"{node.url} at the head")
    assert {sha: fetched[sha] for sha in shas} == {sha: 1 for sha in shas}
    with _client(nodes[1].url, admin) as c:
        traces = c.get("/api/v1/mirror").json()["traces"]
    assert [(t["repo"], t["revision"], t["last_error"]) for t in traces] == [
        ("deb", REVISIONS, None)]


def _take_over(primary: str, token: str, nodes: list[SiteProcess], admin: str,
               db: str) -> None:
    holder = _lease_pid(db, "follower")
    [dead] = [n for n in nodes if n.proc is not None and n.proc.pid == holder]
    [alive] = [n for n in nodes if n is not dead]
    dead.kill()
    _push(primary, token, REVISIONS + 1)
    _wait(lambda: _head(alive.url, admin) == REVISIONS + 1, "the other process follows")
    assert alive.proc is not None and _lease_pid(db, "follower") == alive.proc.pid
