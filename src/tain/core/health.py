"""Health verdicts of a site for one repository, and rotation with hysteresis.

A check of one site for one repository passes when the site answered, holds the
repository, served a sampled file whose bytes hash to the SHA-256 the primary lists,
and is not stale: at most ``max_lag_revisions`` revisions and ``max_lag_seconds``
seconds behind the primary (seconds counted from when the primary committed the
first revision the site lacks). ``next_rotation`` then moves a site out of rotation
after ``fail_after`` consecutive failures and back after ``recover_after``
consecutive passes; a site never checked before is decided by its first check.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_lag_revisions: int = 20
    max_lag_seconds: float = 600.0
    fail_after: int = 2
    recover_after: int = 2


@dataclass(frozen=True, slots=True)
class Rotation:
    """Where a (site, repository) stands: in rotation or not, and the run of equal
    results that led there."""

    in_rotation: bool
    failures: int = 0  # consecutive failed checks
    successes: int = 0  # consecutive passed checks


@dataclass(frozen=True, slots=True)
class Lag:
    revisions: int
    seconds: float


def next_rotation(previous: Rotation | None, passed: bool, limits: Thresholds) -> Rotation:
    """The state after one more check."""
    if previous is None:
        return Rotation(passed, 0 if passed else 1, 1 if passed else 0)
    failures = 0 if passed else previous.failures + 1
    successes = previous.successes + 1 if passed else 0
    in_rotation = previous.in_rotation
    if in_rotation and failures >= limits.fail_after:
        in_rotation = False
    elif not in_rotation and successes >= limits.recover_after:
        in_rotation = True
    return Rotation(in_rotation, failures, successes)


def lag_of(site_revision: int, primary_head: int, first_missing_at: float | None,
           now: float) -> Lag:
    """How far a site is behind: revisions, and seconds since the primary committed
    the first revision the site lacks (``first_missing_at``; None when not known)."""
    behind = max(0, primary_head - site_revision)
    if behind == 0:
        return Lag(0, 0.0)
    seconds = max(0.0, now - first_missing_at) if first_missing_at is not None else 0.0
    return Lag(behind, seconds)


def staleness(lag: Lag, limits: Thresholds) -> str | None:
    """Why a site is stale, or None when it is fresh enough."""
    if lag.revisions > limits.max_lag_revisions:
        return (f"stale: {lag.revisions} revisions behind "
                f"(limit {limits.max_lag_revisions})")
    if lag.revisions and lag.seconds > limits.max_lag_seconds:
        return (f"stale: {lag.revisions} revision(s) behind for {lag.seconds:.0f} s "
                f"(limit {limits.max_lag_seconds:.0f} s)")
    return None
