"""Where other parts of a site plug facts into metrics and alerts.

The mirror-site health checks register a function that returns one ``SiteFact`` per
mirror (up or down and why, lag in revisions and seconds); ``/metrics`` turns them
into the ``tain_mirror_*`` gauges and the alert rules into ``site_down`` and
``site_stale`` alerts. Scheduled jobs other than the site's own scrub and backup
(pull sources, for example) register a function returning a ``JobFact`` per job.
A provider is called once per scrape and once per alert check; it should answer
from memory (the latest probe results), not probe while it is called. One that
raises is logged and skipped.

    from tain.server.monitoring import monitoring_of
    monitoring_of(app).providers.add_sites(lambda: [SiteFact("eu-1", up=True, ...)])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from tain.core.alerts import JobFact, SiteFact

log = logging.getLogger("tain.monitor")

SiteFactsProvider = Callable[[], Sequence[SiteFact]]
JobFactsProvider = Callable[[], Sequence[JobFact]]
T = TypeVar("T")


@dataclass
class Providers:
    sites: list[SiteFactsProvider] = field(default_factory=list)
    jobs: list[JobFactsProvider] = field(default_factory=list)

    def add_sites(self, provider: SiteFactsProvider) -> None:
        self.sites.append(provider)

    def add_jobs(self, provider: JobFactsProvider) -> None:
        self.jobs.append(provider)

    def site_facts(self) -> list[SiteFact]:
        return _gather(self.sites)

    def job_facts(self) -> list[JobFact]:
        return _gather(self.jobs)


def _gather(providers: Sequence[Callable[[], Sequence[T]]]) -> list[T]:
    out: list[T] = []
    for provider in list(providers):
        try:
            out.extend(provider())
        except Exception:
            log.exception("a monitoring provider failed: %r", provider)
    return out
