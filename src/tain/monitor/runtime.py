"""A site's monitoring while it serves: the metrics registry, the usage flusher and
the alert engine, with the two background threads that drive them.

``start()`` begins flushing usage every ``[stats] flush_every`` and checking alerts
every ``[alerts] check_every``; ``stop()`` ends both and flushes what is left. A
flush that fails (the catalog is down) keeps its counts for the next one. With
several processes on one catalog every one flushes its own counts, but only the holder
of the "alerts" lease checks alerts, so each alert is sent once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tain.core.histogram import day_of
from tain.monitor.channels import Delivery, Dispatcher, channels_from
from tain.monitor.engine import AlertEngine, CheckResult, sample_notification
from tain.monitor.facts import FactGatherer, JobResults, no_jobs
from tain.monitor.metrics import build_registry
from tain.monitor.providers import Providers
from tain.service.lease import LeaseKeeper
from tain.service.site import Site
from tain.service.usage import UsageBatch

log = logging.getLogger("tain.monitor")
DAY = 86400.0
ALERTS_LEASE = "alerts"


class Monitoring:
    def __init__(self, site: Site, *, dispatcher: Dispatcher | None = None) -> None:
        self.site = site
        self.config = site.config.monitoring
        self.providers = Providers()
        self.registry, self.http = build_registry(site, self.providers)
        self.dispatcher = dispatcher or Dispatcher(channels_from(self.config.alerts))
        self.engine = self._engine(no_jobs)
        self._unflushed = UsageBatch([], [], [])
        self._flush_lock = threading.Lock()
        self._pruned_day = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.lease = LeaseKeeper(site.catalog, ALERTS_LEASE, ttl=site.config.lease_seconds)

    def start(self, jobs: JobResults = no_jobs) -> None:
        """Begin the background work; ``jobs`` tells how scheduled jobs last ended.
        After ``stop`` it may start again (a server that serves the app once more)."""
        self.engine = self._engine(jobs)
        self._stop = threading.Event()
        if self.config.stats.enabled:
            self._spawn("tain-stats", self.config.stats.flush_seconds, self.flush)
        if self.config.alerts.enabled:
            self.lease.start()
            self._spawn("tain-alerts", self.config.alerts.check_seconds, self.check_alerts)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.lease.stop()
        if self.config.stats.enabled:
            self.flush()

    def flush(self) -> int:
        """Add the usage counted since the last flush to the catalog; returns the number
        of rows written (0 when there was nothing, or when the catalog failed)."""
        with self._flush_lock:
            batch = self._unflushed
            fresh = self.site.usage.drain()
            batch = UsageBatch(batch.downloads + fresh.downloads, batch.popular + fresh.popular,
                               batch.pushes + fresh.pushes)
            self._unflushed = UsageBatch([], [], [])
            try:
                self.site.catalog.add_usage(batch.downloads, batch.popular, batch.pushes,
                                            popular_cap=self.config.stats.popular_paths)
                self._prune_stats()
            except Exception:
                log.exception("flushing usage statistics failed; kept for the next flush")
                self._unflushed = batch
                return 0
            return len(batch.downloads) + len(batch.popular) + len(batch.pushes)

    def check_alerts(self) -> CheckResult | None:
        """One round of the background checks: None when another process holds the
        lease (or the check failed)."""
        if not self.lease.held:
            return None
        try:
            return self.engine.check()
        except Exception:
            log.exception("checking alerts failed")
            return None

    def send_test(self) -> list[Delivery]:
        note = sample_notification(self.config.stats.site_name, self.site.clock())
        return self.dispatcher.send(note)

    def _engine(self, jobs: JobResults) -> AlertEngine:
        alerts = self.config.alerts
        gatherer = FactGatherer(self.site, self.providers, jobs=jobs,
                                audit_every=alerts.audit_check_seconds)
        return AlertEngine(self.site.catalog, alerts, self.dispatcher, gatherer.gather,
                           site_name=self.config.stats.site_name, clock=self.site.clock)

    def _prune_stats(self) -> None:
        today = day_of(self.site.clock())
        if today != self._pruned_day:
            self._pruned_day = today
            keep = self.config.stats.keep_days
            self.site.catalog.prune_stats(before=day_of(self.site.clock() - keep * DAY))

    def _spawn(self, name: str, every: float, work: Callable[[], object]) -> None:
        stop = self._stop  # this run's: a later start makes a new one

        def loop() -> None:
            while not stop.wait(every):
                work()

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
