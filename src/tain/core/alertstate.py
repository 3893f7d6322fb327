"""The life of an alert as pure code: which notifications a check sends.

An alert that starts to hold fires once; while it holds it is sent again every
``repeat_every`` seconds (also when its last sending failed: ``last_sent`` stays
behind); when it stops holding it is resolved and a resolved message goes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tain.core.alerts import Alert


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert the catalog holds as open."""

    id: int
    key: str
    rule: str
    subject: str
    message: str
    severity: str
    opened_at: float
    last_sent_at: float | None
    sends: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """``fire`` (new), ``repeat`` (still open, due again), ``update`` (still open, not
    due: only the message may change) or ``resolve`` (no longer holds)."""

    kind: str
    alert: Alert | None
    current: OpenAlert | None


def plan(open_alerts: Iterable[OpenAlert], holding: Sequence[Alert], now: float,
         repeat_every: float | None) -> list[Step]:
    """The steps that bring the open alerts in line with the alerts that hold now."""
    by_key = {a.key: a for a in open_alerts}
    steps: list[Step] = []
    for alert in holding:
        current = by_key.pop(alert.key, None)
        if current is None:
            steps.append(Step("fire", alert, None))
        elif _due(current, now, repeat_every):
            steps.append(Step("repeat", alert, current))
        else:
            steps.append(Step("update", alert, current))
    steps.extend(Step("resolve", None, gone) for gone in by_key.values())
    return steps


def _due(current: OpenAlert, now: float, repeat_every: float | None) -> bool:
    if current.last_sent_at is None:
        return True  # never delivered: try again
    return repeat_every is not None and now - current.last_sent_at >= repeat_every
