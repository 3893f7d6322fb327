"""Usage statistics: per-day counters the site adds to every few seconds.

``add_usage`` adds the deltas counted in memory since the last flush, in one
transaction: each row is created at zero if missing (``ON CONFLICT DO NOTHING``) and
then incremented in place, so several processes sharing the catalog add up without
lost updates. Popular paths are capped per (day, site, repo): once full, a new path
takes the place of the least counted one if it was counted more (space-saving
counting: a path with more than 1/cap of a day's downloads is never missed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from tain.catalog import schema as t
from tain.catalog.sqlbase import SqlBase
from tain.core.histogram import LATENCY_BUCKETS


@dataclass(frozen=True, slots=True)
class DownloadCount:
    day: str
    site: str
    repo: str
    downloads: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day, "site": self.site, "repo": self.repo,
                "downloads": self.downloads, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class PathCount:
    """Downloads of one path: of one day when counted, summed over days when queried
    (``day`` is then the first day of the range)."""

    day: str
    site: str
    repo: str
    path: str
    downloads: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"repo": self.repo, "path": self.path, "downloads": self.downloads,
                "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class PushCount:
    day: str
    site: str
    repo: str
    commits: int
    bytes_received: int
    files_changed: int
    latency_sum: float
    latency_max: float
    buckets: tuple[int, ...] = field(default=(0,) * (len(LATENCY_BUCKETS) + 1))

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day, "site": self.site, "repo": self.repo, "commits": self.commits,
            "bytes_received": self.bytes_received, "files_changed": self.files_changed,
            "latency_sum": self.latency_sum, "latency_max": self.latency_max,
            "latency_avg": self.latency_sum / self.commits if self.commits else None,
            "latency_buckets": [
                {"le": bound, "count": n}
                for bound, n in zip((*LATENCY_BUCKETS, "+Inf"), self.buckets, strict=True)
            ],
        }


class StatsCatalog(SqlBase):
    def add_usage(self, downloads: Sequence[DownloadCount], popular: Sequence[PathCount],
                  pushes: Sequence[PushCount], *, popular_cap: int = 1000) -> None:
        """Add counted deltas to the per-day rows (one transaction)."""
        if not (downloads or popular or pushes):
            return
        with self._db.write() as conn:
            for d in downloads:
                key = {"day": d.day, "site": d.site, "repo": d.repo}
                self._add(conn, t.stats_downloads, key, downloads=d.downloads, bytes=d.bytes)
            for p in popular:
                self._add_popular(conn, p, popular_cap)
            for push in pushes:
                self._add_push(conn, push)

    def download_stats(self, *, since: str, until: str | None = None, repo: str | None = None,
                       site: str | None = None) -> list[DownloadCount]:
        """Rows of the days ``since``..``until`` (inclusive, YYYY-MM-DD), oldest first."""
        s = t.stats_downloads
        q = _filtered(sa.select(s), s, since, until, repo, site).order_by(s.c.day, s.c.site,
                                                                          s.c.repo)
        with self._db.read() as conn:
            return [DownloadCount(r.day, r.site, r.repo, r.downloads, r.bytes)
                    for r in conn.execute(q)]

    def popular_paths(self, *, since: str, until: str | None = None, repo: str | None = None,
                      site: str | None = None, limit: int = 20) -> list[PathCount]:
        """The most downloaded paths over the days, most first (then by repo and path)."""
        p = t.stats_popular
        total = sa.func.sum(p.c.downloads).label("downloads")
        q = _filtered(sa.select(p.c.repo, p.c.path, total,
                                sa.func.sum(p.c.bytes).label("bytes")), p, since, until,
                      repo, site)
        q = q.group_by(p.c.repo, p.c.path).order_by(total.desc(), p.c.repo, p.c.path)
        with self._db.read() as conn:
            rows = conn.execute(q.limit(max(1, limit))).all()
        return [PathCount(since, site or "", r.repo, r.path, int(r.downloads), int(r.bytes))
                for r in rows]

    def push_stats(self, *, since: str, until: str | None = None, repo: str | None = None,
                   site: str | None = None) -> list[PushCount]:
        s, h = t.stats_pushes, t.stats_push_latency
        q = _filtered(sa.select(s), s, since, until, repo, site).order_by(s.c.day, s.c.site,
                                                                          s.c.repo)
        hq = _filtered(sa.select(h), h, since, until, repo, site)
        with self._db.read() as conn:
            rows = conn.execute(q).all()
            buckets: dict[tuple[str, str, str], list[int]] = {}
            for b in conn.execute(hq):
                counts = buckets.setdefault((b.day, b.site, b.repo),
                                            [0] * (len(LATENCY_BUCKETS) + 1))
                if 0 <= b.bucket < len(counts):
                    counts[int(b.bucket)] = int(b._mapping["count"])
        empty = [0] * (len(LATENCY_BUCKETS) + 1)
        return [PushCount(r.day, r.site, r.repo, r.commits, r.bytes_received, r.files_changed,
                          r.latency_sum, r.latency_max,
                          tuple(buckets.get((r.day, r.site, r.repo), empty))) for r in rows]

    def prune_stats(self, *, before: str) -> int:
        """Delete every per-day row of days before ``before``; returns rows deleted."""
        deleted = 0
        with self._db.write() as conn:
            for table in (t.stats_downloads, t.stats_popular, t.stats_pushes,
                          t.stats_push_latency):
                deleted += conn.execute(sa.delete(table).where(table.c.day < before)).rowcount
        return deleted

    # -- adding ------------------------------------------------------------------------

    def _add(self, conn: Connection, table: sa.Table, key: dict[str, Any],
             **deltas: int | float) -> None:
        """Create the row at zero if missing, then add ``deltas`` to it."""
        zeros = {name: 0 for name in deltas}
        conn.execute(self._insert_ignore(table).values(**key, **zeros))
        conn.execute(sa.update(table).where(*_match(table, key))
                     .values({table.c[n]: table.c[n] + v for n, v in deltas.items()}))

    def _insert_ignore(self, table: sa.Table) -> Any:
        if self._db.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing()
        return postgresql.insert(table).on_conflict_do_nothing()

    def _add_popular(self, conn: Connection, p: PathCount, cap: int) -> None:
        table = t.stats_popular
        group = {"day": p.day, "site": p.site, "repo": p.repo}
        key = {**group, "path": p.path}
        updated = conn.execute(
            sa.update(table).where(*_match(table, key)).values(
                downloads=table.c.downloads + p.downloads, bytes=table.c.bytes + p.bytes)
        ).rowcount
        if updated:
            return
        held = conn.execute(sa.select(sa.func.count()).select_from(table)
                            .where(*_match(table, group))).scalar_one()
        if held < cap:
            conn.execute(self._insert_ignore(table).values(**key, downloads=p.downloads,
                                                           bytes=p.bytes))
            return
        least = conn.execute(sa.select(table.c.path, table.c.downloads, table.c.bytes)
                             .where(*_match(table, group))
                             .order_by(table.c.downloads, table.c.path).limit(1)).first()
        if least is None or least.downloads >= p.downloads:
            return
        conn.execute(sa.delete(table).where(*_match(table, {**group, "path": least.path})))
        conn.execute(sa.insert(table).values(**key, downloads=least.downloads + p.downloads,
                                             bytes=p.bytes))

    def _add_push(self, conn: Connection, push: PushCount) -> None:
        table = t.stats_pushes
        key = {"day": push.day, "site": push.site, "repo": push.repo}
        conn.execute(self._insert_ignore(table).values(
            **key, commits=0, bytes_received=0, files_changed=0, latency_sum=0.0,
            latency_max=0.0))
        c = table.c
        conn.execute(sa.update(table).where(*_match(table, key)).values(
            commits=c.commits + push.commits,
            bytes_received=c.bytes_received + push.bytes_received,
            files_changed=c.files_changed + push.files_changed,
            latency_sum=c.latency_sum + push.latency_sum,
            latency_max=sa.case((c.latency_max < push.latency_max, push.latency_max),
                                else_=c.latency_max),
        ))
        for index, count in enumerate(push.buckets):
            if count:
                self._add(conn, t.stats_push_latency, {**key, "bucket": index}, count=count)


def _match(table: sa.Table, key: dict[str, Any]) -> list[Any]:
    return [table.c[name] == value for name, value in key.items()]


def _filtered(q: Any, table: sa.Table, since: str, until: str | None, repo: str | None,
              site: str | None) -> Any:
    q = q.where(table.c.day >= since)
    if until is not None:
        q = q.where(table.c.day <= until)
    if repo is not None:
        q = q.where(table.c.repo == repo)
    if site is not None:
        q = q.where(table.c.site == site)
    return q
