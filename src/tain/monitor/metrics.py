"""Prometheus metrics of a site, in a registry of its own (one per app).

Request metrics are counted as requests end (``HttpMetrics.observe``, called by the
server's middleware, labelled by the route's path template so the number of series
stays bounded). Everything else is read when ``/metrics`` is scraped
(``SiteCollector``): the catalog (revisions, agents, blobs, the last scrub and
backup, open alerts), the store's data dirs (``os.statvfs``), the usage counters
and the providers (mirror lag).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tain.core.histogram import LATENCY_BUCKETS
from tain.monitor.facts import disk_facts, last_scrub
from tain.monitor.providers import Providers
from tain.service.site import Site

PUSH_STEPS = {
    "/api/v1/repos/{repo}/missing": "missing",
    "/api/v1/repos/{repo}/chunks": "chunks",
    "/api/v1/repos/{repo}/commits": "commit",
}


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("tain_http_requests", "HTTP requests by route template, "
                                "method and status", ["route", "method", "status"],
                                registry=registry)
        self.received = Counter("tain_http_received_bytes", "Request body bytes received",
                                registry=registry)
        self.sent = Counter("tain_http_sent_bytes", "Response body bytes sent",
                            registry=registry)
        self.push = Histogram("tain_push_request_seconds", "Latency of push requests by "
                              "step (missing, chunks, commit, put)", ["step"],
                              buckets=LATENCY_BUCKETS, registry=registry)

    def observe(self, route: str, method: str, status: int, received: int, sent: int,
                seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.received.inc(received)
        self.sent.inc(sent)
        step = "put" if method == "PUT" and route == "/{repo}/{path:path}" else \
            PUSH_STEPS.get(route)
        if step and status < 400:
            self.push.labels(step).observe(seconds)


class SiteCollector(Collector):
    def __init__(self, site: Site, providers: Providers) -> None:
        self.site, self.providers = site, providers

    def collect(self) -> Iterator[Metric]:
        yield from self._repos()
        yield from self._usage()
        yield from self._agents()
        yield from self._store()
        yield from self._scrub_and_backup()
        yield from self._alerts()
        yield from self._mirrors()

    def _repos(self) -> Iterator[Metric]:
        head = GaugeMetricFamily("tain_repo_revision", "Head revision per repository",
                                 labels=["repo"])
        for repo in self.site.catalog.list_repos():
            head.add_metric([repo.name], repo.head)
        yield head

    def _usage(self) -> Iterator[Metric]:
        totals = self.site.usage.totals()
        downloads = CounterMetricFamily("tain_downloads", "Whole-file downloads served",
                                        labels=["repo"])
        served = CounterMetricFamily("tain_download_bytes", "File bytes served (ranges "
                                     "included)", labels=["repo"])
        pushed = CounterMetricFamily("tain_push_received_bytes", "Push bytes received "
                                     "(chunk uploads and PUT bodies)", labels=["repo"])
        for repo, n in sorted(totals.downloads.items()):
            downloads.add_metric([repo], n)
        for repo, n in sorted(totals.download_bytes.items()):
            served.add_metric([repo], n)
        for repo, n in sorted(totals.push_bytes.items()):
            pushed.add_metric([repo], n)
        commits = HistogramMetricFamily("tain_commit_seconds", "Commit latency on the site "
                                        "(rebuild blobs, commit, publish)", labels=["repo"])
        for repo, hist in sorted(totals.commits.items()):
            commits.add_metric([repo], hist.cumulative(), hist.total)
        yield from (downloads, served, pushed, commits)

    def _agents(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily("tain_agent_queue_length", "Changes waiting in an agent's "
                                  "journal", labels=["agent", "repo", "host"])
        seen = GaugeMetricFamily("tain_agent_last_seen_timestamp_seconds", "An agent's "
                                 "latest heartbeat", labels=["agent", "repo", "host"])
        for record in self.site.catalog.list_agents():
            r = record.report
            queue.add_metric([r.agent_id, r.repo, r.host], r.queue_length)
            seen.add_metric([r.agent_id, r.repo, r.host], record.last_seen)
        yield from (queue, seen)

    def _store(self) -> Iterator[Metric]:
        blobs, size = self.site.catalog.blob_totals()
        yield GaugeMetricFamily("tain_store_blobs", "Blobs in the store", value=blobs)
        yield GaugeMetricFamily("tain_store_bytes", "Bytes of all blobs (one copy each)",
                                value=size)
        free = GaugeMetricFamily("tain_data_dir_free_bytes", "Free space for a data dir",
                                 labels=["path"])
        total = GaugeMetricFamily("tain_data_dir_size_bytes", "Size of a data dir's file "
                                  "system", labels=["path"])
        up = GaugeMetricFamily("tain_data_dir_available", "1 if a data dir is usable",
                               labels=["path"])
        for disk in disk_facts(self.site):
            up.add_metric([disk.path], 1 if disk.available else 0)
            if disk.free_bytes is not None:
                free.add_metric([disk.path], disk.free_bytes)
            if disk.total_bytes is not None:
                total.add_metric([disk.path], disk.total_bytes)
        yield from (free, total, up)

    def _scrub_and_backup(self) -> Iterator[Metric]:
        scrub = last_scrub(self.site)
        errors = GaugeMetricFamily("tain_scrub_unrepaired_blobs", "Blobs the last scrub left "
                                   "broken")
        repaired = GaugeMetricFamily("tain_scrub_repaired_blobs", "Blobs the last scrub "
                                     "repaired")
        when = GaugeMetricFamily("tain_scrub_last_run_timestamp_seconds", "When the last "
                                 "scrub ended")
        if scrub is not None:
            errors.add_metric([], scrub.unrepaired)
            repaired.add_metric([], scrub.repaired)
            when.add_metric([], scrub.at)
        yield from (errors, repaired, when)
        backup = GaugeMetricFamily("tain_backup_last_success_timestamp_seconds",
                                   "When the last backup succeeded")
        entries = self.site.catalog.audit_entries(action="backup", limit=1)
        if entries:
            backup.add_metric([], entries[-1].at)
        yield backup

    def _alerts(self) -> Iterator[Metric]:
        active = GaugeMetricFamily("tain_alert_open", "1 for each open alert",
                                   labels=["rule", "subject", "severity"])
        for alert in self.site.catalog.list_alerts(open_only=True, limit=1000):
            active.add_metric([alert.rule, alert.subject, alert.severity], 1)
        yield active

    def _mirrors(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tain_mirror_up", "1 if a mirror site is up", labels=["site"])
        revs = GaugeMetricFamily("tain_mirror_lag_revisions", "Revisions a mirror site is "
                                 "behind", labels=["site"])
        secs = GaugeMetricFamily("tain_mirror_lag_seconds", "Seconds a mirror site is behind",
                                 labels=["site"])
        for fact in self.providers.site_facts():
            up.add_metric([fact.name], 1 if fact.up else 0)
            if fact.lag_revisions is not None:
                revs.add_metric([fact.name], fact.lag_revisions)
            if fact.lag_seconds is not None:
                secs.add_metric([fact.name], fact.lag_seconds)
        yield from (up, revs, secs)


def build_registry(site: Site, providers: Providers) -> tuple[CollectorRegistry, HttpMetrics]:
    registry = CollectorRegistry(auto_describe=False)
    http = HttpMetrics(registry)
    registry.register(SiteCollector(site, providers))
    return registry, http
