"""Site health as monitoring facts: what ``/metrics`` and the alert rules see of the
other sites. Read from the catalog, where the health checks (in whichever process holds
the lease) record their latest findings, so every process tells the same story.

A site is *down* when it does not answer, or when a repository check failed for a
reason other than lag (wrong bytes, missing repository, no access); a site that only
lags is up, with its worst lag, and the stale rule judges it.
"""

from __future__ import annotations

from tain.catalog.health import RepoCheck, SiteCheck
from tain.core.alerts import SiteFact
from tain.service.site import Site


def site_facts(site: Site) -> list[SiteFact]:
    checks, repos = site.catalog.site_health()
    return [_fact(check, [r for r in repos if r.site == check.site]) for check in checks]


def _fact(check: SiteCheck, repos: list[RepoCheck]) -> SiteFact:
    broken = [r for r in repos if not r.ok and not r.reason.startswith("stale")]
    lags = [r for r in repos if r.lag_revisions is not None]
    up = check.up and not broken
    reason = check.reason.removeprefix("down: ") if not check.up else "; ".join(
        f"{r.repo}: {r.reason}" for r in broken)
    left = [r.changed_at for r in repos if not r.in_rotation]
    return SiteFact(
        name=check.site, up=up, reason="" if up else reason,
        lag_revisions=max((r.lag_revisions or 0 for r in lags), default=None),
        lag_seconds=max((r.lag_seconds or 0.0 for r in lags), default=None),
        down_since=min(left) if left and not up else None,
    )
