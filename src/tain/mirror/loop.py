"""``tain serve``'s background thread of health checks: a round at start, then one
every ``[redirector] check_interval``; stopping it gives up the lease at once."""

from __future__ import annotations

import logging
import threading

from tain.errors import TainError
from tain.mirror.health import HealthChecker
from tain.service.site import Site

log = logging.getLogger("tain.health")


class HealthLoop:
    """Runs ``checker.run_once`` now and then every ``check_interval`` in a thread."""

    def __init__(self, checker: HealthChecker) -> None:
        self.checker = checker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin the rounds (again, after ``stop``); nothing if they already run."""
        if self._thread is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._loop, args=(self._stop,),
                                            name="tain-health", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
            try:
                self.checker.release()
            except TainError as exc:
                log.warning("could not release the health lease: %s", exc)

    def _loop(self, stop: threading.Event) -> None:
        interval = self.checker.config.check_interval_seconds
        while not stop.is_set():
            try:
                self.checker.run_once()
            except Exception:
                log.exception("a round of health checks failed")
            stop.wait(interval)


def health_loop(site: Site) -> HealthLoop | None:
    """The loop a site's config asks for: None without ``[[sites]]``/``[redirector]``."""
    config = site.config.redirector
    if config is None or not config.active:
        return None
    return HealthLoop(HealthChecker(site, config))
