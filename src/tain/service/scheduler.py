"""Scheduled site jobs: ``tain serve`` runs scrubs and backups every so often.

A ``Scheduler`` holds jobs, each with a period and a way to learn when it last ran
(from state that outlives the process, so a restart does not reset the period). One
background thread runs whatever is due, one job at a time, and sleeps until the next
is due. ``stop()`` wakes it and passes the stop event to the running job, which ends
early where it can (a scrub saves how far it got). A job that fails is logged and
tried again at its next period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tain.errors import Conflict, UsageError
from tain.service.backup import dest_dir, last_backup_time, scheduled_backup
from tain.service.scrub import RemoteSource, ScrubOptions, last_run_time, scrub
from tain.service.site import Site

log = logging.getLogger("tain.scheduler")

MAX_SLEEP = 60.0


def _never() -> float | None:
    return None


@dataclass(frozen=True)
class JobResult:
    """How a job's latest run ended (``error`` None: it succeeded)."""

    name: str
    at: float
    error: str | None = None


@dataclass(frozen=True)
class Job:
    name: str
    every: float  # seconds between runs
    run: Callable[[threading.Event], None]  # gets the stop event
    last_run: Callable[[], float | None] = _never  # when it last ran, if known


class Scheduler:
    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        clock: Callable[[], float] = time.time,
        max_sleep: float = MAX_SLEEP,
    ) -> None:
        self.jobs = tuple(jobs)
        self._clock = clock
        self._max_sleep = max_sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        started = clock()
        self._last: dict[str, float] = {}
        self.results: dict[str, JobResult] = {}  # the latest run of each job, for alerts
        for job in self.jobs:
            try:
                known = job.last_run()
            except Exception:  # state we cannot read: count from now
                log.exception("cannot tell when %s last ran", job.name)
                known = None
            self._last[job.name] = known if known is not None else started

    def next_due(self) -> float | None:
        """When the next job is due (UNIX time), or None without jobs."""
        return min((self._last[j.name] + j.every for j in self.jobs), default=None)

    def run_pending(self) -> list[str]:
        """Run every job that is due now, in order; returns their names."""
        ran: list[str] = []
        for job in self.jobs:
            if self._stop.is_set():
                break
            if self._clock() < self._last[job.name] + job.every:
                continue
            log.info("scheduled %s starting", job.name)
            error = None
            try:
                job.run(self._stop)
            except Conflict as exc:
                log.info("scheduled %s skipped: %s", job.name, exc)
            except Exception as exc:
                log.exception("scheduled %s failed", job.name)
                error = str(exc) or type(exc).__name__
            self._last[job.name] = self._clock()
            self.results[job.name] = JobResult(job.name, self._last[job.name], error)
            ran.append(job.name)
        return ran

    def start(self) -> None:
        if not self.jobs or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="tain-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_pending()
            due = self.next_due()
            pause = self._max_sleep if due is None else due - self._clock()
            self._stop.wait(min(self._max_sleep, max(0.0, pause)))


def site_jobs(site: Site, remote: Callable[[], RemoteSource | None] | None = None) -> list[Job]:
    """The jobs a site's config asks for: ``[scrub] every`` and ``[backup] every``.
    ``remote`` gives another site to repair lost blobs from (a mirror's upstream)."""
    jobs: list[Job] = []
    scrub_cfg, backup_cfg = site.config.scrub, site.config.backup
    if scrub_cfg.every_seconds:
        options = ScrubOptions(
            fraction=scrub_cfg.fraction, rate_limit=scrub_cfg.rate_limit_bytes,
            actor="scheduler",
        )

        def run_scrub(stop: threading.Event) -> None:
            source = remote() if remote else None
            try:
                scrub(site, replace(options, remote=source), cancel=stop)
            finally:
                if source is not None:
                    close = getattr(source, "close", None)
                    if callable(close):
                        close()

        jobs.append(Job("scrub", scrub_cfg.every_seconds, run_scrub,
                        lambda: last_run_time(site)))
    if backup_cfg.every_seconds and backup_cfg.dest:
        try:
            dest = str(dest_dir(backup_cfg.dest, base=site.config.site_dir))
        except UsageError as exc:
            log.error("no scheduled backups: [backup] dest: %s", exc)
            return jobs

        def run_backup(stop: threading.Event) -> None:
            scheduled_backup(site, dest, blobs=backup_cfg.blobs, keep=backup_cfg.keep,
                             cancel=stop)

        jobs.append(Job("backup", backup_cfg.every_seconds, run_backup,
                        lambda: last_backup_time(dest)))
    elif backup_cfg.every_seconds:
        log.warning("[backup] every is set but dest is not: no scheduled backups")
    return jobs


def site_scheduler(site: Site,
                   remote: Callable[[], RemoteSource | None] | None = None) -> Scheduler:
    return Scheduler(site_jobs(site, remote), clock=site.clock)

