"""When a scheduled job runs next: pure functions of a schedule, the last start and now.

A schedule is an interval (``every``, counted from the last start so a slow run does not
drift the period), a cron expression (5 fields, UTC, via croniter), or neither (the job
runs only when asked). Jitter adds up to ``jitter`` seconds, drawn by the caller (a
``random()`` value in [0, 1) is passed in), so many jobs with one period do not all hit
their upstreams at the same second. Nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from tain.errors import UsageError


@dataclass(frozen=True, slots=True)
class Schedule:
    every_seconds: int | None = None
    cron: str | None = None
    jitter_seconds: int = 0

    @property
    def manual(self) -> bool:
        return self.every_seconds is None and self.cron is None

    def describe(self) -> str:
        if self.cron:
            text = f"cron {self.cron!r}"
        elif self.every_seconds:
            text = f"every {self.every_seconds} s"
        else:
            return "manual"
        return f"{text} (+ up to {self.jitter_seconds} s jitter)" if self.jitter_seconds else text


def make_schedule(
    every_seconds: int | None, cron: str | None, jitter_seconds: int = 0
) -> Schedule:
    """Validate: at most one of ``every``/``cron``, a valid 5-field cron, no negatives."""
    cron = (cron or "").strip() or None
    if every_seconds is not None and cron is not None:
        raise UsageError("give either an interval (every) or a cron expression, not both")
    if every_seconds is not None and every_seconds <= 0:
        raise UsageError("the interval must be positive")
    if cron is not None:
        check_cron(cron)
    if jitter_seconds < 0:
        raise UsageError("jitter must not be negative")
    return Schedule(every_seconds, cron, jitter_seconds)


def check_cron(expression: str) -> str:
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise UsageError(
            f"bad cron expression {expression!r}",
            hint="use 5 fields: minute hour day month weekday, e.g. '0 */4 * * *'",
        )
    return expression


def next_run(
    schedule: Schedule, *, now: float, last_start: float | None, draw: float = 0.0
) -> float | None:
    """The next time the job is due (UNIX seconds), or None for a manual job.

    An interval job that never ran is due now; one that ran is due ``every`` after its
    last start, but never in the past. A cron job is due at the first matching minute
    after ``now``. ``draw`` in [0, 1) scales the jitter.
    """
    jitter = schedule.jitter_seconds * min(max(draw, 0.0), 1.0)
    if schedule.every_seconds is not None:
        if last_start is None:
            return now
        return max(last_start + schedule.every_seconds, now) + jitter
    if schedule.cron is not None:
        start = datetime.fromtimestamp(now, tz=UTC)
        return float(croniter(schedule.cron, start).get_next(float)) + jitter
    return None
