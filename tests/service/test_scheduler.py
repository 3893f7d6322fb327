"""The scheduler: jobs run when due (by an injected clock), keep their period across
restarts, survive failures, and stop when asked."""

from __future__ import annotations

import threading

from tain.errors import Conflict
from tain.service.scheduler import Job, Scheduler


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_jobs_run_when_due_and_count_from_their_last_run() -> None:
    clock = Clock()
    ran: list[str] = []
    jobs = [
        Job("scrub", 100, lambda stop: ran.append("scrub")),
        Job("backup", 50, lambda stop: ran.append("backup"), last_run=lambda: 960.0),
    ]
    scheduler = Scheduler(jobs, clock=clock)
    assert scheduler.next_due() == 1010.0  # backup: last ran at 960, every 50
    assert scheduler.run_pending() == []
    clock.now = 1010
    assert scheduler.run_pending() == ["backup"]
    clock.now = 1100  # scrub counts from start-up (never ran), backup from 1010
    assert scheduler.run_pending() == ["scrub", "backup"]
    assert scheduler.next_due() == 1150.0
    assert ran == ["backup", "scrub", "backup"]


def test_a_failing_job_is_logged_and_tried_next_period() -> None:
    clock = Clock()
    calls: list[int] = []

    def flaky(stop: threading.Event) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        raise Conflict("a scrub is already running")

    scheduler = Scheduler([Job("scrub", 10, flaky)], clock=clock)
    clock.now += 10
    assert scheduler.run_pending() == ["scrub"]
    assert scheduler.run_pending() == []
    clock.now += 10
    assert scheduler.run_pending() == ["scrub"]
    assert len(calls) == 2


def test_the_thread_runs_jobs_and_stop_interrupts_them() -> None:
    started, stopped = threading.Event(), threading.Event()

    def long_job(stop: threading.Event) -> None:
        started.set()
        stop.wait(30)
        if stop.is_set():
            stopped.set()

    scheduler = Scheduler([Job("scrub", 0.01, long_job, last_run=lambda: 0.0)],
                          max_sleep=0.05)
    scheduler.start()
    assert started.wait(10)
    scheduler.stop(timeout=10)
    assert stopped.is_set()


def test_no_jobs_no_thread() -> None:
    scheduler = Scheduler([])
    scheduler.start()
    assert scheduler.next_due() is None
    scheduler.stop()
