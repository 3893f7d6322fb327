"""Active, content-level health checks of every configured site.

One round (``HealthChecker.run_once``) reads the primary's heads, then checks every
site in parallel: it must answer its API, hold each repository, not be stale beyond
the thresholds (revisions and seconds behind the primary), and serve sampled files
(a random small file of the primary's tree at the site's revision, a different page
of the tree each round) whose bytes hash to the SHA-256 the primary lists. The
verdicts move each (site, repository) in or out of rotation with hysteresis
(``tain.core.health``) and go to the catalog with a lag-history row each.

Several ``tain serve`` processes may share one catalog: a lease row lets one of them
run the rounds; the others read the results (``tain.mirror.loop`` runs the rounds).
"""

from __future__ import annotations

import logging
import random
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tain.catalog.health import RepoCheck, SiteCheck
from tain.config_sites import RedirectorConfig, SiteSpec
from tain.core.health import Lag, Rotation, lag_of, next_rotation, staleness
from tain.errors import AuthError, Forbidden, NotFound, TainError
from tain.mirror.probe import SiteProbe, open_probe
from tain.mirror.reference import PrimaryView
from tain.service.site import Site

log = logging.getLogger("tain.health")

LEASE = "health"
MAX_PARALLEL = 8


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check saw of one repository on one site; ``passed`` None: unknown
    (the primary could not be read), which leaves the rotation state as it was."""

    repo: str
    revision: int | None
    lag: Lag | None
    passed: bool | None
    reason: str
    sample_path: str | None = None


@dataclass(frozen=True, slots=True)
class SiteResult:
    check: SiteCheck
    findings: list[Finding]


class HealthChecker:
    def __init__(
        self, site: Site, config: RedirectorConfig, *,
        clock: Callable[[], float] | None = None, rng: random.Random | None = None,
        holder: str | None = None,
    ) -> None:
        self.site = site
        self.config = config
        self.clock = clock or site.clock
        self.rng = rng or random.Random()
        self.holder = holder or f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"
        self._probes: dict[str, SiteProbe] = {}  # kept between rounds: keep-alive
        self._cursors: dict[str, str] = {}

    def probe(self, spec: SiteSpec) -> SiteProbe:
        if spec.name not in self._probes:
            self._probes[spec.name] = open_probe(spec, self.site, self.config.timeout_seconds)
        return self._probes[spec.name]

    def run_once(self) -> bool:
        """One round of checks; False (and nothing checked) while another process
        holds the lease."""
        ttl = max(3.0 * self.config.check_interval_seconds, 60.0)
        if not self.site.catalog.acquire_lease(LEASE, self.holder, ttl):
            return False
        now = self.clock()
        primary_spec = self.config.primary
        if primary_spec is None:
            return False
        primary = self.probe(primary_spec)
        view = PrimaryView(primary, self._repos(primary), self._cursors)
        sites = self.config.all_sites
        for spec in sites:
            self.probe(spec)  # opened here, used by one thread each below
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(sites))) as pool:
            results = list(pool.map(lambda s: self._check_site(s, view, now), sites))
        self._cursors = view.next_cursors()
        self._record(results, now)
        return True

    def release(self) -> None:
        """Give up the lease (another process may check at once) and close the probes."""
        for probe in self._probes.values():
            probe.close()
        self._probes.clear()
        self.site.catalog.release_lease(LEASE, self.holder)

    def _repos(self, primary: SiteProbe) -> list[str]:
        if self.config.repos:
            return list(self.config.repos)
        try:
            return sorted(primary.repos())
        except TainError:
            return sorted({r.repo for r in self.site.catalog.site_health()[1]})

    def _check_site(self, spec: SiteSpec, view: PrimaryView, now: float) -> SiteResult:
        probe = self.probe(spec)
        started = time.perf_counter()
        try:
            version = probe.version()
        except TainError as exc:
            why = f"down: {exc}"
            check = SiteCheck(spec.name, spec.url, False, why, now)
            return SiteResult(check, [Finding(r, None, None, False, why)
                                      for r in view.repos if spec.carries(r)])
        latency = (time.perf_counter() - started) * 1000
        sampled = _Throughput()
        findings = [self._check_repo(probe, repo, view, now, sampled)
                    for repo in view.repos if spec.carries(repo)]
        check = SiteCheck(spec.name, spec.url, True, "ok", now, version, latency,
                          sampled.rate())
        return SiteResult(check, findings)

    def _check_repo(self, probe: SiteProbe, repo: str, view: PrimaryView, now: float,
                    sampled: _Throughput) -> Finding:
        try:
            revision = probe.head(repo)
        except NotFound:
            return Finding(repo, None, None, False, "missing: the site does not hold it")
        except (AuthError, Forbidden) as exc:
            return Finding(repo, None, None, False, f"no read access: {exc}")
        except TainError as exc:
            return Finding(repo, None, None, False, f"error: {exc}")
        if view.error:
            return Finding(repo, revision, None, None, view.error)
        head = view.heads[repo]
        first_missing = view.committed_at(repo, revision + 1) if revision < head else None
        lag = lag_of(revision, head, first_missing, now)
        at = min(revision, head)
        bad, path = self._sample(probe, repo, at, view, sampled)
        if bad:
            return Finding(repo, revision, lag, False, bad, path)
        stale = staleness(lag, self.config.thresholds)
        if stale:
            return Finding(repo, revision, lag, False, stale, path)
        return Finding(repo, revision, lag, True, "ok", path)

    def _sample(self, probe: SiteProbe, repo: str, rev: int, view: PrimaryView,
                sampled: _Throughput) -> tuple[str | None, str | None]:
        """Check ``sample_files`` random small files; (why they failed or None, a path)."""
        files = view.files(repo, rev, self.config.max_sample_bytes)
        chosen = self.rng.sample(files, min(self.config.sample_files, len(files)))
        path = None
        for entry in chosen:
            path = entry.path
            started = time.perf_counter()
            try:
                digest, size = probe.sample(repo, entry.path, rev, self.config.max_sample_bytes)
            except TainError as exc:
                return f"sample {entry.path}@{rev} failed: {exc}", path
            sampled.add(size, time.perf_counter() - started)
            if digest != entry.sha256:
                return (f"wrong bytes: {entry.path}@{rev} has SHA-256 {digest[:16]}..., "
                        f"the primary lists {(entry.sha256 or '')[:16]}..."), path
        return None, path

    def _record(self, results: list[SiteResult], now: float) -> None:
        _, old_rows = self.site.catalog.site_health()
        previous = {(r.site, r.repo): r for r in old_rows}
        repo_rows = [
            _repo_row(r.check.site, f, previous.get((r.check.site, f.repo)), now, self.config)
            for r in results for f in r.findings
        ]
        names = [s.name for s in self.config.all_sites]
        self.site.catalog.record_health([r.check for r in results], repo_rows, keep_sites=names)
        self.site.catalog.prune_lag_history(now - self.config.history_days * 86400)
        for row in repo_rows:
            old = previous.get((row.site, row.repo))
            if old is None or old.in_rotation != row.in_rotation:
                state = "into" if row.in_rotation else "out of"
                log.warning("site %s %s rotation for %s: %s", row.site, state, row.repo,
                            row.reason)


def _repo_row(site: str, found: Finding, old: RepoCheck | None, now: float,
              config: RedirectorConfig) -> RepoCheck:
    before = Rotation(old.in_rotation, old.failures, old.successes) if old else None
    if found.passed is None:
        state = before or Rotation(False)
    else:
        state = next_rotation(before, found.passed, config.thresholds)
    changed = now if old is None or old.in_rotation != state.in_rotation else old.changed_at
    lag = found.lag
    return RepoCheck(
        site=site, repo=found.repo, revision=found.revision,
        lag_revisions=lag.revisions if lag else None, lag_seconds=lag.seconds if lag else None,
        ok=bool(found.passed), reason=found.reason, in_rotation=state.in_rotation,
        failures=state.failures, successes=state.successes, checked_at=now,
        changed_at=changed, sample_path=found.sample_path,
    )


class _Throughput:
    def __init__(self) -> None:
        self.bytes = 0
        self.seconds = 0.0

    def add(self, size: int, seconds: float) -> None:
        self.bytes += size
        self.seconds += seconds

    def rate(self) -> float | None:
        return self.bytes / self.seconds if self.bytes and self.seconds > 0 else None
