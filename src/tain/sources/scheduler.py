"""The scheduler of pull source jobs inside ``tain serve``.

One thread looks for due jobs every ``poll_seconds`` (or at once when woken by a
run-now request to this process), renews the leases of the runs it holds, and fails
jobs whose lease expired while "syncing" (their process was killed). A due job is
started only after ``claim_source`` won its lease, so several sites on one database
never run it twice; at most ``max_concurrent`` runs go at once per process. When a run
ends, its next due time comes from ``core.schedule.next_run``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable

from tain.catalog.sources import RunOutcome
from tain.core.schedule import next_run
from tain.errors import TainError
from tain.service.site import Site
from tain.sources.jobs import spec_of, sync_config_jobs
from tain.sources.rsync import kill_leftover
from tain.sources.runner import run_source

log = logging.getLogger("tain.sources")


def new_owner() -> str:
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SourceScheduler:
    def __init__(self, site: Site, *, owner: str | None = None,
                 draw: Callable[[], float] = random.random) -> None:
        self.site = site
        self.owner = owner or new_owner()
        self._draw = draw
        self._config = site.config.sources
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sync tain.toml's jobs, clear stale "syncing" states, start the thread."""
        self._kill_leftovers()
        try:
            sync_config_jobs(self.site)
            self.site.catalog.reset_stale_sources()
        except TainError as err:  # the site still serves; the jobs wait for a fix
            log.error("pull sources: cannot sync the jobs of tain.toml: %s", err)
        self._thread = threading.Thread(target=self._loop, name="tain-sources", daemon=True)
        self._thread.start()

    def _kill_leftovers(self) -> None:
        """Stop rsyncs a killed predecessor left writing into staging trees, except
        where a live lease says another process (on this site directory) runs the job;
        the job's next run stops those in any case, once it holds the lease."""
        now = self.site.clock()
        for pid_file in (self.site.config.site_dir / "sources").glob("*/rsync.pid"):
            try:
                record = self.site.catalog.get_source(pid_file.parent.name)
                if record.state == "syncing" and (record.lease_expires or 0) > now:
                    continue
            except TainError:
                pass
            kill_leftover(pid_file)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:  # runs end (and leave the dict) meanwhile
            workers = list(self._running.values())
        for worker in workers:
            worker.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def _loop(self) -> None:
        pause = min(self._config.poll_seconds, self._config.lease_seconds / 3)
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a database hiccup must not end the scheduler
                log.exception("source scheduler tick failed")
            self._wake.wait(pause)
            self._wake.clear()

    def tick(self) -> list[str]:
        """One pass: renew held leases, fail stale jobs, start due ones; returns the
        names started."""
        catalog = self.site.catalog
        for name in self.running():
            catalog.renew_source_lease(name, self.owner, lease_seconds=self._config.lease_seconds)
        stale = catalog.reset_stale_sources()
        if stale:
            log.warning("sources %s were interrupted (lease expired); marked failed", stale)
        started = []
        now = self.site.clock()
        for record in catalog.list_sources():
            if len(self.running()) >= self._config.max_concurrent or self._stop.is_set():
                break
            due = record.next_run is not None and record.next_run <= now
            if not due or record.paused or record.name in self.running():
                continue
            run_id = catalog.claim_source(record.name, self.owner,
                                          lease_seconds=self._config.lease_seconds)
            if run_id is not None:
                self._start(record.name, run_id)
                started.append(record.name)
        return started

    def _start(self, name: str, run_id: int) -> None:
        worker = threading.Thread(target=self._run, args=(name, run_id),
                                  name=f"tain-source-{name}", daemon=True)
        with self._lock:
            self._running[name] = worker
        worker.start()

    def _run(self, name: str, run_id: int) -> None:
        try:
            run_claimed(self.site, name, run_id, self.owner, cancel=self._stop,
                        draw=self._draw)
        except Exception:
            log.exception("source %s: recording run %d failed", name, run_id)
        finally:
            with self._lock:
                self._running.pop(name, None)
            self._wake.set()


def run_claimed(site: Site, name: str, run_id: int, owner: str, *,
                cancel: threading.Event, draw: Callable[[], float] = random.random
                ) -> RunOutcome:
    """Run a job whose lease ``owner`` holds, record the outcome, schedule the next run."""
    record = site.catalog.get_source(name)
    try:
        spec = spec_of(record)
    except TainError as err:  # a stored spec this version cannot read
        outcome = RunOutcome("failed", error=f"bad job spec: {err}")
        site.catalog.finish_source_run(name, owner, run_id, outcome, next_run=None,
                                       keep_runs=20)
        return outcome
    outcome = run_source(site, spec, run_id, cancel=cancel)
    due = next_run(spec.schedule, now=site.clock(), last_start=record.last_start, draw=draw())
    site.catalog.finish_source_run(name, owner, run_id, outcome, next_run=due,
                                   keep_runs=spec.keep_runs)
    log.info("source %s: run %d %s", name, run_id, outcome.state)
    return outcome
