"""Cycles overlap: the next cycle is read (and its small files sent) while the one before
commits; a commit that fails meanwhile loses nothing. The agent runs in this process
against a real site, with small batches so that a few dozen files make several cycles."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.agent import source as source_module
from tain.agent.config import AgentConfig, Timing, source_config
from tain.agent.debounce import Policy
from tain.agent.display import LogDisplay
from tain.agent.runner import run_agent
from tain.agent.sync import Cycle, CycleReport
from tain.client import SiteClient
from tain.errors import RemoteError
from tests.agent.conftest import REPO, Site, create_repo, wait_identical
from tests.conftest import RunningSite

SMALL_BATCHES = functools.partial(Policy, first_batch=15, min_batch=15, max_batch=15)


def _tree(root: Path, files: int) -> None:
    for i in range(files):
        (root / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 3}" / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))


@pytest.fixture
def agent_in_thread(
    tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Start the agent (small batches) on a directory of 60 files; yield the directory."""
    yield from _agent(tmp_path, site, monkeypatch)


def _agent(tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(source_module, "Policy", SMALL_BATCHES)
    root = tmp_path / "src"
    _tree(root, 60)
    stop = threading.Event()
    config = AgentConfig(
        (source_config(root, repo=REPO, sites=[site.url], token=site.token, env={},
                       state_dir=tmp_path / "state"),),
        Timing(heartbeat=1, rescan=0, degraded_rescan=1, backoff=0.1, max_backoff=0.5),
    )
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(run_agent(
        config, stop=stop, handle_signals=False, display=LogDisplay())))
    thread.start()
    try:
        yield root
    finally:
        stop.set()
        thread.join(timeout=30)
    assert codes == [0]


@pytest.fixture
def overlap(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """The first commit waits (up to 10 s) until the next cycle has started reading:
    it is let go at once when cycles overlap, and only after the timeout otherwise."""
    seen = {"overlapped": False}
    next_started = threading.Event()
    prepare, commit = Cycle.prepare, Cycle.commit
    commits = 0

    def gated_commit(self: Cycle, *args: object, **kwargs: object) -> CycleReport:
        nonlocal commits
        commits += 1
        if commits == 1:
            seen["overlapped"] = next_started.wait(10)
        return commit(self, *args, **kwargs)  # type: ignore[arg-type]

    def noted_prepare(self: Cycle, *args: object, **kwargs: object) -> None:
        if commits:
            next_started.set()
        prepare(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Cycle, "commit", gated_commit)
    monkeypatch.setattr(Cycle, "prepare", noted_prepare)
    return seen


def test_the_next_cycle_is_read_while_the_last_one_commits(
    overlap: dict[str, bool], agent_in_thread: Path, site: Site
) -> None:
    wait_identical(agent_in_thread, site.url, site.token)
    assert overlap["overlapped"]
    with SiteClient(site.url, site.token) as client:
        revisions = client.revisions(REPO, limit=100)
    assert len(revisions) >= 4  # 63 paths, 15 a cycle
    assert sum(r["added"] for r in revisions) == 63  # every path committed once


@pytest.fixture
def first_commit_fails(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first commit fails the way a dropped connection does, after the next cycle
    was read; returns the list of commits attempted (appended to)."""
    commit = Cycle.commit
    attempts: list[int] = []

    def failing(self: Cycle, *args: object, **kwargs: object) -> CycleReport:
        attempts.append(len(self.taken))
        if len(attempts) == 1:
            raise RemoteError("cannot reach the site: connection reset")
        return commit(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Cycle, "commit", failing)
    return attempts


def test_a_commit_that_fails_in_flight_loses_nothing(
    first_commit_fails: list[int], agent_in_thread: Path, site: Site
) -> None:
    wait_identical(agent_in_thread, site.url, site.token)
    assert len(first_commit_fails) >= 5  # the failed one is taken again later
    (agent_in_thread / "d0" / "f0.txt").write_text("changed after the failure\n")
    wait_identical(agent_in_thread, site.url, site.token)


def test_an_older_site_without_blob_uploads_gets_every_file_as_chunks(
    tmp_path: Path, site_without_blobs: RunningSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_repo(site_without_blobs)
    site = Site(site_without_blobs.url, site_without_blobs.token, site_without_blobs.site_dir)
    for root in _agent(tmp_path, site, monkeypatch):
        wait_identical(root, site.url, site.token)
        (root / "d1" / "late.txt").write_text("after the fallback\n")
        wait_identical(root, site.url, site.token)
