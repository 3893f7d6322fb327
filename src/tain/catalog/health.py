"""Site health as the checks found it (``tain.mirror.health`` writes, the redirector
and ``/api/v1/sites`` read), the lag history, and the lease that lets one of several
``tain serve`` processes on one catalog run the checks at a time.

``record_health`` replaces the rows of the sites it is given in one transaction and
appends one history row per (site, repository) checked; rows of sites that are no
longer configured are dropped. Checks are status, not changes to data: not audited.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from tain.catalog import schema as t
from tain.catalog.models import Version
from tain.catalog.sqlbase import SqlBase
from tain.catalog.tree import _resolve, live_at, row_version


@dataclass(frozen=True, slots=True)
class SiteCheck:
    """What the last check of one site saw of the site as a whole."""

    site: str
    url: str
    up: bool
    reason: str  # "ok", or why the site is down
    checked_at: float
    version: str | None = None
    latency_ms: float | None = None
    throughput: float | None = None  # bytes/s of the last sampled download

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RepoCheck:
    """One site's state for one repository after the last check."""

    site: str
    repo: str
    revision: int | None
    lag_revisions: int | None
    lag_seconds: float | None
    ok: bool  # the last check passed
    reason: str
    in_rotation: bool
    failures: int
    successes: int
    checked_at: float
    changed_at: float  # when in_rotation last changed
    sample_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LagSample:
    site: str
    repo: str
    at: float
    revision: int | None
    lag_revisions: int | None
    lag_seconds: float | None
    up: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class HealthCatalog(SqlBase):
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; False while another
        holder's lease has not expired."""
        now = self._clock()
        lease = t.health_lease
        with self._db.write() as conn:
            row = conn.execute(
                sa.select(lease).where(lease.c.name == name).with_for_update()
            ).first()
            if row is None:
                conn.execute(sa.insert(lease).values(name=name, holder=holder,
                                                     expires_at=now + ttl))
                return True
            if row.holder != holder and row.expires_at > now:
                return False
            conn.execute(sa.update(lease).where(lease.c.name == name)
                         .values(holder=holder, expires_at=now + ttl))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        lease = t.health_lease
        with self._db.write() as conn:
            conn.execute(sa.delete(lease).where(lease.c.name == name,
                                                lease.c.holder == holder))

    def record_health(self, sites: Sequence[SiteCheck], repos: Sequence[RepoCheck], *,
                      keep_sites: Collection[str]) -> None:
        up = {s.site: s.up for s in sites}
        with self._db.write() as conn:
            _drop_other_sites(conn, keep_sites)
            for site in sites:
                conn.execute(sa.delete(t.site_health).where(t.site_health.c.site == site.site))
                conn.execute(sa.insert(t.site_health).values(**asdict(site)))
            for repo in repos:
                srh = t.site_repo_health
                conn.execute(sa.delete(srh).where(srh.c.site == repo.site,
                                                  srh.c.repo == repo.repo))
                conn.execute(sa.insert(srh).values(**asdict(repo)))
            if repos:
                conn.execute(sa.insert(t.site_lag_history), [
                    {"site": r.site, "repo": r.repo, "at": r.checked_at,
                     "revision": r.revision, "lag_revisions": r.lag_revisions,
                     "lag_seconds": r.lag_seconds, "up": up.get(r.site, True)}
                    for r in repos
                ])

    def site_health(self) -> tuple[list[SiteCheck], list[RepoCheck]]:
        """Every site row (by name) and every (site, repository) row."""
        with self._db.read() as conn:
            sites = conn.execute(sa.select(t.site_health).order_by(t.site_health.c.site)).all()
            srh = t.site_repo_health
            repos = conn.execute(sa.select(srh).order_by(srh.c.site, srh.c.repo)).all()
        return [SiteCheck(**r._asdict()) for r in sites], [RepoCheck(**r._asdict()) for r in repos]

    def lag_history(self, *, site: str | None = None, repo: str | None = None,
                    since: float | None = None, limit: int = 1000) -> list[LagSample]:
        """History rows, oldest first, at most ``limit`` (the newest ones)."""
        h = t.site_lag_history
        q = sa.select(h)
        if site is not None:
            q = q.where(h.c.site == site)
        if repo is not None:
            q = q.where(h.c.repo == repo)
        if since is not None:
            q = q.where(h.c.at >= since)
        q = q.order_by(h.c.at.desc(), h.c.id.desc()).limit(limit)
        with self._db.read() as conn:
            rows = conn.execute(q).all()
        return [_sample(r) for r in reversed(rows)]

    def prune_lag_history(self, before: float) -> int:
        h = t.site_lag_history
        with self._db.write() as conn:
            return conn.execute(sa.delete(h).where(h.c.at < before)).rowcount or 0

    def version_at(self, repo: str, path: str, rev: int | None = None) -> Version | None:
        """The version of ``path`` live at ``rev`` (None: the head), with the revision
        where it appeared; None when the path is not there."""
        e = t.entries
        with self._db.read() as conn:
            rid, r = _resolve(conn, repo, rev)
            row = conn.execute(
                sa.select(e).where(e.c.repo_id == rid, e.c.path == path, live_at(r))
            ).first()
        return row_version(row) if row else None


def _drop_other_sites(conn: Connection, keep: Collection[str]) -> None:
    names = list(keep)
    conn.execute(sa.delete(t.site_health).where(t.site_health.c.site.not_in(names)))
    conn.execute(sa.delete(t.site_repo_health).where(t.site_repo_health.c.site.not_in(names)))


def _sample(row: Row[Any]) -> LagSample:
    return LagSample(row.site, row.repo, row.at, row.revision, row.lag_revisions,
                     row.lag_seconds, row.up)
