"""Catalog queries for site-wide work that one process does for all (see
``tain.service.lease``): heads another process committed that still need a
statement, and a mirror following its upstream's retention.
"""

from __future__ import annotations

import sqlalchemy as sa

from tain.catalog import schema as t
from tain.catalog.repos import _repo_row
from tain.catalog.sqlbase import SqlBase


class ScaleOutCatalog(SqlBase):
    def unsigned_heads(self) -> list[str]:
        """Repositories with revisions whose head statement is missing or older than
        the head (one query: the head signer polls it)."""
        r, hs = t.repos, t.head_statements
        q = (sa.select(r.c.name).select_from(r.outerjoin(hs, hs.c.repo_id == r.c.id))
             .where(r.c.head > 0, sa.or_(hs.c.revision.is_(None), hs.c.revision != r.c.head))
             .order_by(r.c.name))
        with self._db.read() as conn:
            return [str(name) for name in conn.execute(q).scalars()]

    def drop_trace(self, repo: str) -> None:
        """Forget a mirror's trace of ``repo`` (it was deleted here)."""
        with self._db.write() as conn:
            conn.execute(sa.delete(t.mirror_trace).where(t.mirror_trace.c.repo == repo))

    def follow_retention(self, repo: str, *, oldest_kept: int, keep_last: int | None,
                         keep_days: float | None, actor: str) -> int:
        """Take the upstream's retention settings and drop what it no longer keeps (never
        past this site's head); returns the entry rows dropped. Audited when it changes
        anything, like ``apply_retention``."""
        with self._db.write() as conn:
            row = _repo_row(conn, repo, lock=True)
            values: dict[str, object] = {}
            if (row.keep_last, row.keep_days) != (keep_last, keep_days):
                values.update(keep_last=keep_last, keep_days=keep_days)
            first = min(oldest_kept, row.head)
            dropped = 0
            if first > row.oldest_kept:
                dropped = conn.execute(sa.delete(t.entries).where(
                    t.entries.c.repo_id == row.id, t.entries.c.rev_to.is_not(None),
                    t.entries.c.rev_to <= first)).rowcount
                values["oldest_kept"] = first
            if not values:
                return 0
            conn.execute(sa.update(t.repos).where(t.repos.c.id == row.id).values(**values))
            self._audit(conn, actor, "retention.follow", repo, entries_dropped=dropped,
                        **{k: v for k, v in values.items()})
        return int(dropped)
