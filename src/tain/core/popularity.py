"""Exponentially decaying request counters: popularity of files, load of sites.

Each key holds one number that halves every ``half_life`` seconds and grows by one per
hit, so it is about the request rate times ``half_life / ln 2``. No row per request and
no timer: a key is brought up to date when it is hit or read. The table is bounded;
when it overflows, the coldest tenth is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Hashable


class DecayingCounter:
    def __init__(self, half_life: float = 300.0, max_keys: int = 100_000) -> None:
        if half_life <= 0:
            raise ValueError("half_life must be positive")
        self.half_life = half_life
        self.max_keys = max_keys
        self._values: dict[Hashable, tuple[float, float]] = {}

    def _decayed(self, key: Hashable, now: float) -> float:
        value, at = self._values.get(key, (0.0, now))
        return value * math.pow(0.5, max(0.0, now - at) / self.half_life)

    def hit(self, key: Hashable, now: float, amount: float = 1.0) -> float:
        """Count one request; returns the new rate per minute."""
        value = self._decayed(key, now) + amount
        self._values[key] = (value, now)
        if len(self._values) > self.max_keys:
            self._evict(now)
        return self._per_minute(value)

    def per_minute(self, key: Hashable, now: float) -> float:
        """The recent request rate of ``key``, per minute."""
        return self._per_minute(self._decayed(key, now))

    def __len__(self) -> int:
        return len(self._values)

    def _per_minute(self, value: float) -> float:
        return value * math.log(2) / self.half_life * 60.0

    def _evict(self, now: float) -> None:
        ranked = sorted(self._values, key=lambda k: self._decayed(k, now))
        for key in ranked[: max(1, len(ranked) // 10)]:
            del self._values[key]
