"""When a changed path may be read and sent: a pure policy over change times.

Each queued path carries the time of its first and of its latest change and whether a
writer may still be at it (``writing``: created or modified, but no close, rename or
delete seen since). A path is *ready*

* ``settle`` seconds after its latest change when no writer is at it (a closed file, a
  rename, a delete: short, so that rename pairs and directory bursts coalesce),
* ``quiet`` seconds after its latest change while a writer may be at it (the file is
  *stable*: nothing happened to it for that long),
* at the latest ``max_delay`` seconds after its first change, so that a file written
  continuously still gets snapshots (each one checked for torn reads, see ``sync``).

A cycle starts once something is ready and either the directory has been quiet for
``settle`` or the oldest ready path has waited ``batch_wait``: a burst of thousands of
creates becomes a few revisions, while a lone change goes at once. How many paths one
cycle takes is sized to the throughput seen (``batch_size``): about ``cycle_seconds`` of
work, so that the first files of a long burst are committed early. Before any rate is
known the first cycle takes only ``first_batch`` paths: the first files of a burst are
then committed within about a second while the rest follow in cycles sized to the rate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Policy:
    settle: float = 0.05
    quiet: float = 0.25
    max_delay: float = 5.0
    batch_wait: float = 0.1
    cycle_seconds: float = 0.4
    first_batch: int = 400
    min_batch: int = 200
    max_batch: int = 5000


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """A path is ready iff (not writing and last change <= ``settled_before``) or
    (writing and last change <= ``quiet_before``) or first change <= ``first_before``."""

    settled_before: float
    quiet_before: float
    first_before: float


def cutoffs(now: float, policy: Policy) -> Cutoffs:
    return Cutoffs(now - policy.settle, now - policy.quiet, now - policy.max_delay)


def ready_at(first_at: float, last_at: float, writing: bool, policy: Policy) -> float:
    """The moment a path with these change times becomes ready."""
    wait = policy.quiet if writing else policy.settle
    return min(last_at + wait, first_at + policy.max_delay)


def is_ready(first_at: float, last_at: float, writing: bool, now: float, policy: Policy) -> bool:
    return ready_at(first_at, last_at, writing, policy) <= now


def cycle_start_at(
    earliest_ready: float | None, last_event_at: float | None, policy: Policy
) -> float | None:
    """When a sync cycle should start: None while nothing is queued."""
    if earliest_ready is None:
        return None
    if last_event_at is None:
        return earliest_ready
    calm = last_event_at + policy.settle
    return max(earliest_ready, min(calm, earliest_ready + policy.batch_wait))


def batch_size(paths_per_second: float | None, policy: Policy) -> int:
    """Paths for the next cycle: about ``cycle_seconds`` of work at the rate seen."""
    if paths_per_second is None:
        return policy.first_batch
    wanted = int(paths_per_second * policy.cycle_seconds)
    return max(policy.min_batch, min(policy.max_batch, wanted))


def updated_rate(previous: float | None, paths: int, seconds: float) -> float | None:
    """The throughput estimate after a cycle of ``paths`` in ``seconds`` (a moving
    average; cycles too small to say anything leave it as it was)."""
    if paths < 50 or seconds <= 0:
        return previous
    seen = paths / seconds
    return seen if previous is None else 0.5 * previous + 0.5 * seen
