"""A bandwidth limit: requests are paced so that bytes leave at ``rate`` per second.

Each request reserves its size on a shared timeline and waits until its turn: the
first request of a quiet period goes at once, later ones follow at the limit. Safe to
call from several upload threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._clock = clock
        self._free_at = 0.0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> float:
        """Book ``size`` bytes; returns how long to wait before sending them."""
        with self._lock:
            now = self._clock()
            start = max(now, self._free_at)
            self._free_at = start + size / self.rate
            return start - now
