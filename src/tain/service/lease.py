"""Site-wide singletons: one of several ``tain serve`` processes on one catalog does a
piece of background work (following the upstream, signing head statements, sending
alerts) at a time.

A ``LeaseKeeper`` holds the catalog lease ``name`` (``catalog.acquire_lease``): a
thread tries to take or renew it every third of ``ttl``. The work asks ``held`` before
each round. A holder that dies stops renewing, and its lease expires after ``ttl``;
another process's next attempt then takes it. A holder that stops cleanly releases the
lease, so another takes over at its next attempt. ``held`` also turns False when the
last renewal is older than ``ttl`` by this process's clock (the catalog was
unreachable): a process that cannot renew stops working before anyone takes over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from tain.catalog.base import Catalog

log = logging.getLogger("tain.lease")


def new_holder() -> str:
    """A name unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    def __init__(self, catalog: Catalog, name: str, *, ttl: float,
                 holder: str | None = None, clock: Callable[[], float] = time.time) -> None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive ttl")
        self.catalog, self.name, self.ttl, self.clock = catalog, name, ttl, clock
        self.holder = holder or new_holder()
        self._valid_until = 0.0
        self._gained = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self.clock() < self._valid_until

    def tick(self) -> bool:
        """One attempt to take or renew the lease; whether it is held now."""
        was = self.held
        started = self.clock()
        try:
            got = self.catalog.acquire_lease(self.name, self.holder, self.ttl)
        except Exception as exc:  # the catalog is down: keep what is still valid
            log.warning("lease %s: cannot renew: %s", self.name, exc)
            return self.held
        self._valid_until = started + self.ttl if got else 0.0
        if got and not was:
            log.info("lease %s: taken by %s", self.name, self.holder)
            self._gained.set()
        elif was and not got:
            log.warning("lease %s: lost to another process", self.name)
        if not got:
            self._gained.clear()
        return got

    def wait_held(self, timeout: float) -> bool:
        """Block until the lease is held (or ``timeout``, or ``stop``)."""
        self._gained.wait(timeout)
        return self.held and not self._stop.is_set()

    def start(self) -> None:
        self.tick()
        self._thread = threading.Thread(target=self._run, name=f"tain-lease-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and give the lease up, so another process takes over at once."""
        self._stop.set()
        self._gained.set()  # wakes a waiter
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._valid_until:
            self._valid_until = 0.0
            try:
                self.catalog.release_lease(self.name, self.holder)
            except Exception as exc:
                log.warning("lease %s: cannot release: %s", self.name, exc)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.tick()
