"""Alert rules as pure code: facts about the site in, the alerts that hold now out.

The engine (``tain.monitor.engine``) gathers ``Facts`` from the catalog, the store,
the scheduler and the providers other parts plug in (mirror sites' health), calls
``evaluate`` and keeps the answer's state in the catalog. Every alert has a stable
``key`` (rule and subject), so the same problem seen again is the same alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tain.core.units import human_size


@dataclass(frozen=True, slots=True)
class SiteFact:
    """A mirror site as the health checks see it (filled by a provider)."""

    name: str
    up: bool
    reason: str = ""
    lag_revisions: int | None = None
    lag_seconds: float | None = None
    down_since: float | None = None  # when it was first seen down, if known


@dataclass(frozen=True, slots=True)
class AgentFact:
    agent_id: str
    repo: str
    host: str
    last_seen: float
    queue_length: int
    queue_growing_checks: int = 0  # consecutive checks in which the queue grew


@dataclass(frozen=True, slots=True)
class DiskFact:
    path: str
    available: bool
    free_bytes: int | None = None
    total_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class JobFact:
    """The latest run of a backup or another scheduled job."""

    name: str
    ok: bool
    at: float
    message: str = ""


@dataclass(frozen=True, slots=True)
class ScrubFact:
    at: float
    unrepaired: int
    repaired: int = 0


@dataclass(frozen=True, slots=True)
class AuditFact:
    ok: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Facts:
    now: float
    sites: tuple[SiteFact, ...] = ()
    agents: tuple[AgentFact, ...] = ()
    disks: tuple[DiskFact, ...] = ()
    jobs: tuple[JobFact, ...] = ()
    scrub: ScrubFact | None = None
    audit: AuditFact | None = None


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Thresholds of every rule; ``None`` (or ``False``) turns a rule off."""

    site_down_after: float | None = 300.0
    site_stale_revisions: int | None = 10
    site_stale_seconds: float | None = 3600.0
    agent_silent_after: float | None = 600.0
    agent_queue_above: int | None = 10_000
    agent_queue_growing_checks: int | None = 10
    scrub_corruption: bool = True
    disk_free_below_percent: float | None = 10.0
    disk_free_below_bytes: int | None = None
    job_failed: bool = True
    audit_broken: bool = True


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    subject: str
    message: str
    severity: str = "critical"  # or "warning"
    details: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}"


def evaluate(facts: Facts, rules: AlertRules) -> list[Alert]:
    """Every alert that holds for these facts, ordered by key."""
    found = [
        *_site_alerts(facts, rules),
        *_agent_alerts(facts, rules),
        *_disk_alerts(facts, rules),
        *_job_alerts(facts, rules),
        *_scrub_alerts(facts, rules),
        *_audit_alerts(facts, rules),
    ]
    return sorted(found, key=lambda a: a.key)


def _site_alerts(facts: Facts, rules: AlertRules) -> list[Alert]:
    out = []
    for site in facts.sites:
        if not site.up:
            since = site.down_since if site.down_since is not None else facts.now
            if rules.site_down_after is not None and facts.now - since >= rules.site_down_after:
                why = f": {site.reason}" if site.reason else ""
                out.append(Alert("site_down", site.name, f"site {site.name} is down{why}",
                                 details={"down_since": since}))
            continue
        stale = _stale_reason(site, rules)
        if stale:
            out.append(Alert("site_stale", site.name, f"site {site.name} is behind: {stale}",
                             "warning", {"lag_revisions": site.lag_revisions,
                                         "lag_seconds": site.lag_seconds}))
    return out


def _stale_reason(site: SiteFact, rules: AlertRules) -> str:
    reasons = []
    if (rules.site_stale_revisions is not None and site.lag_revisions is not None
            and site.lag_revisions > rules.site_stale_revisions):
        reasons.append(f"{site.lag_revisions} revisions")
    if (rules.site_stale_seconds is not None and site.lag_seconds is not None
            and site.lag_seconds > rules.site_stale_seconds):
        reasons.append(f"{site.lag_seconds:.0f} s")
    return ", ".join(reasons)


def _agent_alerts(facts: Facts, rules: AlertRules) -> list[Alert]:
    out = []
    for agent in facts.agents:
        where = f"{agent.host} ({agent.repo})"
        silent = facts.now - agent.last_seen
        if rules.agent_silent_after is not None and silent > rules.agent_silent_after:
            out.append(Alert("agent_silent", agent.agent_id,
                             f"agent {agent.agent_id} on {where} silent for {silent:.0f} s",
                             details={"last_seen": agent.last_seen}))
            continue
        queue = agent.queue_length
        too_long = rules.agent_queue_above is not None and queue > rules.agent_queue_above
        growing = (rules.agent_queue_growing_checks is not None
                   and agent.queue_growing_checks >= rules.agent_queue_growing_checks)
        if too_long or growing:
            how = "growing" if growing and not too_long else "long"
            out.append(Alert("agent_queue", agent.agent_id,
                             f"agent {agent.agent_id} on {where}: queue {how}, {queue} changes",
                             "warning", {"queue_length": queue}))
    return out


def _disk_alerts(facts: Facts, rules: AlertRules) -> list[Alert]:
    out = []
    for disk in facts.disks:
        if not disk.available:
            out.append(Alert("disk_unavailable", disk.path, f"data dir {disk.path} is unavailable"))
            continue
        if disk.free_bytes is None or not disk.total_bytes:
            continue
        percent = 100.0 * disk.free_bytes / disk.total_bytes
        low_pct = (rules.disk_free_below_percent is not None
                   and percent < rules.disk_free_below_percent)
        low_bytes = (rules.disk_free_below_bytes is not None
                     and disk.free_bytes < rules.disk_free_below_bytes)
        if low_pct or low_bytes:
            out.append(Alert("disk_free", disk.path,
                             f"data dir {disk.path}: only {human_size(disk.free_bytes)} free "
                             f"({percent:.1f}%)", details={"free_bytes": disk.free_bytes}))
    return out


def _job_alerts(facts: Facts, rules: AlertRules) -> list[Alert]:
    if not rules.job_failed:
        return []
    return [Alert("job_failed", job.name, f"{job.name} failed: {job.message or 'no reason given'}",
                  details={"at": job.at}) for job in facts.jobs if not job.ok]


def _scrub_alerts(facts: Facts, rules: AlertRules) -> list[Alert]:
    scrub = facts.scrub
    if not rules.scrub_corruption or scrub is None or scrub.unrepaired <= 0:
        return []
    return [Alert("scrub_corruption", "store",
                  f"the last scrub left {scrub.unrepaired} blob(s) corrupt or missing",
                  details={"at": scrub.at, "unrepaired": scrub.unrepaired})]


def _audit_alerts(facts: Facts, rules: AlertRules) -> list[Alert]:
    audit = facts.audit
    if not rules.audit_broken or audit is None or audit.ok:
        return []
    first = audit.problems[0] if audit.problems else "verification failed"
    return [Alert("audit_broken", "audit", f"the audit chain is broken: {first}",
                  details={"problems": len(audit.problems)})]
