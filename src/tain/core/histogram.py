"""Latency histograms as plain values: fixed buckets, counts, sum and max.

One bucket layout serves both the per-day rows in the catalog (``tain stats pushes``)
and the Prometheus histogram of commit latency, so both show the same distribution.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Upper bounds in seconds (Prometheus ``le``); +Inf is implied after the last.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)


def bucket_index(seconds: float, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> int:
    """The index of the first bucket whose upper bound holds ``seconds``
    (``len(bounds)`` for the +Inf bucket)."""
    return bisect.bisect_left(bounds, seconds)


@dataclass
class Histogram:
    """Observations counted per bucket (not cumulative), with their sum and max."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    maximum: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, seconds: float) -> None:
        self.counts[bucket_index(seconds)] += 1
        self.total += seconds
        self.maximum = max(self.maximum, seconds)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus wants them, ending with ``+Inf``."""
        out, running = [], 0
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


def day_of(epoch: float) -> str:
    """The UTC day of a UNIX time, ``YYYY-MM-DD`` (the key of every per-day row)."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d")


def bucket_label(index: int) -> str:
    """``<= 0.05 s`` for a bucket index, ``> 60 s`` for the last."""
    if index >= len(LATENCY_BUCKETS):
        return f"> {LATENCY_BUCKETS[-1]:g} s"
    return f"<= {LATENCY_BUCKETS[index]:g} s"
