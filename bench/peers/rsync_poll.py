"""The classic mirror: a loop that runs ``rsync -rlt --delete`` from the primary's
published tree (served by an rsync daemon) into a directory, then sleeps ``interval``
seconds, like a cron job with the shortest possible period.

After each rsync run the loop asks the current ``target`` (a callable) whether the
mirror now holds what the benchmark waits for; the first run after which it does gives
the arrival time: the end of that run, on the monotonic clock.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.procs import BenchError

POLL_FLAGS = ["-rlt", "--delete"]
OK_EXIT = (0, 24)
"""24: files vanished during the transfer (the primary switched its published tree)."""


class RsyncPollMirror:
    def __init__(self, url: str, target_dir: Path, interval: float = 1.0) -> None:
        self.url, self.dir, self.interval = url, target_dir, interval
        self._lock = threading.Lock()
        self._target: Callable[[], bool] | None = None
        self._arrived: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rsync-poll")
        self.runs = 0
        self.error = ""

    @property
    def argv(self) -> list[str]:
        return ["rsync", *POLL_FLAGS, self.url, f"{self.dir}/"]

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=120)

    def expect(self, target: Callable[[], bool]) -> None:
        """Wait for ``target`` from now on (the arrival of an earlier one is forgotten)."""
        with self._lock:
            self._target, self._arrived = target, None

    def arrival(self, timeout: float) -> float:
        """The monotonic time at which the expected content arrived (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._arrived is not None:
                    return self._arrived
            if self.error:
                raise BenchError(f"rsync poll loop: {self.error}")
            time.sleep(0.01)
        raise BenchError(f"the rsync poll mirror did not get the change in {timeout:.0f} s")

    def _loop(self) -> None:
        try:
            self._runs()
        except Exception as exc:  # reported by arrival()
            self.error = f"{type(exc).__name__}: {exc}"

    def _runs(self) -> None:
        while not self._stop.is_set():
            proc = subprocess.run(self.argv, capture_output=True, text=True, timeout=600)
            ended = time.monotonic()
            self.runs += 1
            if proc.returncode not in OK_EXIT:
                self.error = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
                return
            with self._lock:
                if self._target is not None and self._arrived is None and self._target():
                    self._arrived = ended
            self._stop.wait(self.interval)
