"""Failed sign-in counting (pure, in memory): after ``max_failures`` failures within
``window`` seconds a key (a user name, an address) is refused until the oldest of
them is ``window`` old. A success clears the key's failures."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class FailureLimiter:
    def __init__(self, max_failures: int, window: float, clock: Callable[[], float],
                 *, max_keys: int = 100_000) -> None:
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds until every key may try again (0: they may now)."""
        now = self._clock()
        with self._lock:
            waits = [self._wait(key, now) for key in keys]
        return max(waits, default=0.0)

    def fail(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._max_keys:
                self._forget_stale(now)
            for key in keys:
                times = self._failures.setdefault(key, deque(maxlen=self._max))
                times.append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _wait(self, key: str, now: float) -> float:
        times = self._failures.get(key)
        if not times or len(times) < self._max:
            return 0.0
        return max(0.0, times[0] + self._window - now)

    def _forget_stale(self, now: float) -> None:
        """Bound memory under a flood of distinct keys: drop keys with no recent failure."""
        for key in [k for k, v in self._failures.items() if v[-1] + self._window <= now]:
            del self._failures[key]
