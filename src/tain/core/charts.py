"""Chart data (pure): per-day series from timestamped values, in the shape the
console's chart helper draws (labels along the x axis, one dataset per series)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tain.core.histogram import day_of

DAY = 86400


@dataclass(frozen=True)
class Chart:
    """One chart: ``kind`` is "bar" or "line"; ``unit`` "bytes" formats the axis."""

    chart_id: str
    title: str
    labels: list[str]
    series: dict[str, list[float]] = field(default_factory=dict)
    kind: str = "bar"
    unit: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.chart_id, "title": self.title, "kind": self.kind,
                "unit": self.unit, "labels": self.labels,
                "datasets": [{"label": name, "data": values}
                             for name, values in sorted(self.series.items())]}


def day_start(at: float) -> int:
    """The UTC midnight at or before ``at``."""
    return int(at // DAY * DAY)


def day_labels(end: float, days: int) -> list[str]:
    """``days`` UTC dates (YYYY-MM-DD) ending with the day of ``end``."""
    last = day_start(end)
    return [day_of(last - (days - 1 - i) * DAY) for i in range(days)]


def day_range(end: float, days: int) -> tuple[str, str]:
    """The first and last UTC dates of the ``days`` days ending with ``end``'s day, as
    the statistics queries take them (inclusive)."""
    return day_of(end - (days - 1) * DAY), day_of(end)


def daily_sums(points: Iterable[tuple[str, float, float]], *, end: float,
               days: int) -> dict[str, list[float]]:
    """Sum ``(series, at, value)`` points per series and UTC day over the ``days``
    days ending with ``end``'s day; points outside the window are ignored."""
    first = day_start(end) - (days - 1) * DAY
    sums: dict[str, list[float]] = {}
    for name, at, value in points:
        index = (day_start(at) - first) // DAY
        if 0 <= index < days:
            sums.setdefault(name, [0.0] * days)[index] += value
    return sums


def day_at(day: str) -> float:
    """The UTC midnight starting ``day`` (YYYY-MM-DD)."""
    return float(calendar.timegm(time.strptime(day, "%Y-%m-%d")))
