"""Sites as ``GET /api/v1/sites``, ``/api/v1/status`` and ``tain status`` show them:
each configured site with what its last check found, per repository, and whether it
needs attention (down, never checked, or out of rotation for a repository)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tain.catalog.health import RepoCheck
from tain.config_sites import RedirectorConfig, SiteSpec
from tain.mirror.redirector import HealthSnapshot


def site_reports(config: RedirectorConfig, snap: HealthSnapshot, *,
                 visible: Callable[[str], bool],
                 load: Callable[[SiteSpec], float | None]) -> list[dict[str, Any]]:
    return [_site(spec, snap, visible, load(spec)) for spec in config.all_sites]


def _site(spec: SiteSpec, snap: HealthSnapshot, visible: Callable[[str], bool],
          load: float | None) -> dict[str, Any]:
    check = snap.sites.get(spec.name)
    repos = [_repo(r) for (name, repo), r in sorted(snap.repos.items())
             if name == spec.name and visible(repo)]
    problems = []
    if check is None:
        problems.append("never checked")
    elif not check.up:
        problems.append(check.reason)
    problems += [f"{r['repo']}: {r['reason']}" for r in repos if not r["in_rotation"]]
    return {
        "name": spec.name, "url": spec.url, "region": spec.region,
        "capacity": spec.capacity, "primary": spec.primary, "self": spec.is_self,
        "up": check.up if check else None,
        "reason": check.reason if check else "never checked",
        "version": check.version if check else None,
        "latency_ms": check.latency_ms if check else None,
        "throughput": check.throughput if check else None,
        "last_check": check.checked_at if check else None,
        "load": load,
        "in_rotation": bool(repos) and all(r["in_rotation"] for r in repos),
        "attention": bool(problems), "problems": problems,
        "repos": repos,
    }


def _repo(row: RepoCheck) -> dict[str, Any]:
    return {
        "repo": row.repo, "revision": row.revision, "lag_revisions": row.lag_revisions,
        "lag_seconds": row.lag_seconds, "ok": row.ok, "reason": row.reason,
        "in_rotation": row.in_rotation, "failures": row.failures,
        "successes": row.successes, "last_check": row.checked_at, "since": row.changed_at,
        "sample_path": row.sample_path,
    }
