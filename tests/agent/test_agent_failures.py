"""Nothing is lost: kill -9 of the agent mid-upload and mid-burst, sites that stop
mid-sync (failover to the next site), every site down (the agent queues), a site that
comes back (it catches up), and a file rewritten all the time (never committed torn)."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tain.client import SiteClient
from tests.agent.conftest import (
    REPO,
    AgentProcess,
    Site,
    head,
    wait_for,
    wait_identical,
)


def staged_chunks(site_dir: Path) -> int:
    return sum(1 for p in (site_dir / "blobs" / "chunks").rglob("*") if p.is_file())


def test_kill9_mid_upload_and_mid_burst_loses_nothing(
    tmp_path: Path, site: Site, agents: Callable[..., AgentProcess]
) -> None:
    rng = random.Random(9)
    root = tmp_path / "src"
    (root / "small").mkdir(parents=True)
    for i in range(50):
        (root / "small" / f"s{i}.txt").write_text(f"small {i}\n")
    agent = agents(root, [site])
    agent.start()
    wait_identical(root, site.url, site.token)

    # a large file, uploaded slowly; kill -9 once its chunks are arriving
    (root / "large.bin").write_bytes(rng.randbytes(12 * 1024 * 1024))
    agent.stop()
    agent.start("--bwlimit", "3M")
    wait_for(lambda: staged_chunks(site.site_dir) > 0, "the large file's upload to start")
    agent.kill()
    assert agent.status()["queue_length"] >= 1  # still queued: not committed yet
    agent.start()
    wait_identical(root, site.url, site.token)

    # a burst of creates, edits and deletes; kill -9 in the middle of it
    before = head(site.url, site.token)
    done = threading.Event()

    def burst() -> None:
        for i in range(1500):
            (root / "burst" / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
            (root / "burst" / f"d{i % 10}" / f"b{i}.txt").write_text(f"burst {i}\n" * (i % 5))
            if i % 3 == 0:
                (root / "small" / f"s{i % 50}.txt").write_text(f"edited {i}\n")
            if i % 500 == 499:
                time.sleep(0.3)
        done.set()

    writer = threading.Thread(target=burst)
    writer.start()
    try:
        wait_for(lambda: head(site.url, site.token) > before or done.is_set(),
                 "a first revision of the burst")
        agent.kill()
    finally:
        writer.join()
    for i in range(0, 1500, 7):  # and more changes while the agent is dead
        (root / "burst" / f"d{i % 10}" / f"b{i}.txt").unlink()
    agent.start()
    wait_identical(root, site.url, site.token)
    assert agent.stop() == 0


def config_file(path: Path, root: Path, sites: list[Site], state: Path) -> Path:
    entries = ", ".join(
        f'{{url = "{s.url}", token_env = "TOKEN_{i}"}}' for i, s in enumerate(sites)
    )
    path.write_text(
        'heartbeat = "1s"\nmax_backoff = "2s"\nfailback = 1\n\n'
        f'[[source]]\ndir = "{root}"\nrepo = "{REPO}"\nstate_dir = "{state}"\n'
        f'bwlimit = "2M"\nsites = [{entries}]\n'
    )
    return path


def test_failover_queueing_and_catching_up(
    tmp_path: Path, two_sites: tuple[Site, Site], agents: Callable[..., AgentProcess]
) -> None:
    first, second = two_sites
    rng = random.Random(3)
    root = tmp_path / "src"
    root.mkdir()
    for i in range(40):
        (root / f"f{i}.txt").write_text(f"file {i}\n")
    config = config_file(tmp_path / "agent.toml", root, [first, second], tmp_path / "state")
    env = {"TOKEN_0": first.token, "TOKEN_1": second.token}
    agent = agents(root, [first, second])
    agent.start_config(config, env)
    wait_identical(root, first.url, first.token)

    # the first site dies in the middle of a slow sync: the second one gets everything
    (root / "big.bin").write_bytes(rng.randbytes(6 * 1024 * 1024))
    for i in range(200):
        (root / "more" / f"m{i}.txt").parent.mkdir(exist_ok=True)
        (root / "more" / f"m{i}.txt").write_text(f"more {i}\n")
    wait_for(lambda: staged_chunks(first.site_dir) > 0, "the upload to the first site")
    assert first.process is not None and second.process is not None
    first.process.kill()
    wait_identical(root, second.url, second.token)
    assert agent.status()["current_site"] == second.url

    # every site down: changes are queued, nothing is lost
    second.process.kill()
    (root / "f1.txt").write_text("changed while every site is down\n")
    (root / "f2.txt").unlink()
    (root / "offline").mkdir()
    (root / "offline" / "new.txt").write_text("queued\n")
    wait_for(lambda: agent.status()["queue_length"] >= 3 and agent.state() == "offline",
             "the agent to queue the changes")
    status = agent.status()
    assert status["current_site"] is None and status["last_error"]

    # one site comes back: the agent catches up with it
    first.process.start()
    wait_identical(root, first.url, first.token)
    wait_for(lambda: agent.status()["queue_length"] == 0, "an empty queue")
    assert agent.stop() == 0


def test_file_rewritten_continuously_is_never_committed_torn(
    tmp_path: Path, site: Site, agents: Callable[..., AgentProcess]
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    hot = root / "hot.bin"
    rng = random.Random(5)
    body = rng.randbytes(600_000)
    states: set[str] = set()

    def content(n: int) -> bytes:
        # every state has the same size: a torn read cannot show up as a size change
        return (b"%012d" % n) * 4096 + body[: 600_000 - 49152] + (b"%012d" % n) * 4096

    first = content(0)
    hot.write_bytes(first)
    states.add(hashlib.sha256(first).hexdigest())
    agent = agents(root, [site])
    agent.start()
    wait_identical(root, site.url, site.token)

    stop_at = time.monotonic() + 4.0
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        data = content(n)
        states.add(hashlib.sha256(data).hexdigest())
        if n % 2:
            hot.write_bytes(data)  # truncate and write
        else:
            with hot.open("r+b") as f:  # overwrite in place, same size
                f.write(data[:300_000])
                f.flush()
                f.write(data[300_000:])
        time.sleep(0.4 if n % 25 == 0 else rng.random() * 0.01)
    wait_identical(root, site.url, site.token)
    with SiteClient(site.url, site.token) as client:
        versions = client.history(REPO, "hot.bin")
    assert versions
    torn = [v for v in versions if v["sha256"] not in states]
    assert torn == [], f"{len(torn)} of {len(versions)} committed versions are torn"
    assert agent.stop() == 0
