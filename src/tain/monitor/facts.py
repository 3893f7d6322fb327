"""Gathering the facts the alert rules judge: from the catalog (agents, the last scrub,
the audit chain), the store (free space), the scheduler (failed jobs) and the
providers other parts plug in (mirror sites, more jobs).

Two facts need memory across checks, kept here: how many checks in a row an agent's
queue has grown, and the audit chain's verdict (verifying reads the whole log, so it
runs every ``audit_check_seconds``, not on every check).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tain.core.alerts import AgentFact, AuditFact, DiskFact, Facts, JobFact, ScrubFact
from tain.monitor.providers import Providers
from tain.service.scheduler import JobResult
from tain.service.site import Site
from tain.store.local import LocalStore

JobResults = Callable[[], Mapping[str, JobResult]]


def no_jobs() -> Mapping[str, JobResult]:
    return {}


class FactGatherer:
    def __init__(self, site: Site, providers: Providers, *, jobs: JobResults = no_jobs,
                 audit_every: float = 3600.0) -> None:
        self.site, self.providers, self.jobs = site, providers, jobs
        self.audit_every = audit_every
        self._queues: dict[str, tuple[int, int]] = {}  # agent id -> (queue, growing checks)
        self._audit: tuple[float, AuditFact] | None = None

    def gather(self, now: float) -> Facts:
        return Facts(
            now=now,
            sites=tuple(self.providers.site_facts()),
            agents=tuple(self._agents()),
            disks=tuple(disk_facts(self.site)),
            jobs=tuple(self._jobs()),
            scrub=last_scrub(self.site),
            audit=self._audit_fact(now),
        )

    def _agents(self) -> list[AgentFact]:
        facts, seen = [], {}
        for record in self.site.catalog.list_agents():
            r = record.report
            before, growing = self._queues.get(r.agent_id, (r.queue_length, 0))
            growing = growing + 1 if r.queue_length > before else (
                growing if r.queue_length == before and r.queue_length > 0 else 0)
            seen[r.agent_id] = (r.queue_length, growing)
            facts.append(AgentFact(r.agent_id, r.repo, r.host, record.last_seen,
                                   r.queue_length, growing))
        self._queues = seen
        return facts

    def _jobs(self) -> list[JobFact]:
        own = [JobFact(name, result.error is None, result.at, result.error or "")
               for name, result in sorted(self.jobs().items())]
        return own + self.providers.job_facts()

    def _audit_fact(self, now: float) -> AuditFact:
        if self._audit is None or now - self._audit[0] >= self.audit_every:
            _, problems = self.site.catalog.verify_audit()
            self._audit = (now, AuditFact(not problems, tuple(problems[:20])))
        return self._audit[1]


def disk_facts(site: Site) -> list[DiskFact]:
    """The local store's data dirs (an S3 store has no free space to speak of)."""
    if not isinstance(site.store, LocalStore):
        return []
    return [DiskFact(str(d["path"]), bool(d.get("available")) and "error" not in d,
                     _int(d.get("free_bytes")), _int(d.get("total_bytes")))
            for d in site.store.disk_usage()]


def last_scrub(site: Site) -> ScrubFact | None:
    entries = site.catalog.audit_entries(action="scrub", limit=1)
    if not entries:
        return None
    details = entries[-1].details
    return ScrubFact(entries[-1].at, _int(details.get("unrepaired")) or 0,
                     _int(details.get("repaired")) or 0)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
