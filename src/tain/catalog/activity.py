"""Read-only queries the console's pages need beyond the core contract: commit
activity for the statistics charts and the audit log paged from the newest entry."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from tain.catalog import schema as t
from tain.catalog.sqlbase import SqlBase
from tain.core.audit import AuditRecord

r, e = t.revisions, t.entries


@dataclass(frozen=True, slots=True)
class CommitActivity:
    """One revision: when, and how many bytes of new file versions it brought."""

    repo: str
    number: int
    created_at: float
    bytes_added: int
    files: int
    bytes: int


class ActivityCatalog(SqlBase):
    def commit_activity(self, *, since: float) -> list[CommitActivity]:
        """Every revision created at or after ``since``, oldest first. ``bytes_added``
        sums the file versions that revision introduced (entries with ``rev_from`` =
        its number), so a rollback or a rename costs what it wrote, not the tree."""
        added = sa.func.coalesce(sa.func.sum(e.c.size), 0)
        q = (
            sa.select(t.repos.c.name, r.c.number, r.c.created_at, r.c.files, r.c.bytes,
                      added.label("bytes_added"))
            .join(t.repos, t.repos.c.id == r.c.repo_id)
            .outerjoin(e, sa.and_(e.c.repo_id == r.c.repo_id, e.c.rev_from == r.c.number,
                                  e.c.kind == "file"))
            .where(r.c.created_at >= since)
            .group_by(t.repos.c.name, r.c.number, r.c.created_at, r.c.files, r.c.bytes)
            .order_by(r.c.created_at, t.repos.c.name, r.c.number)
        )
        with self._db.read() as conn:
            rows = conn.execute(q).all()
        return [CommitActivity(x.name, x.number, x.created_at, int(x.bytes_added), x.files,
                               x.bytes) for x in rows]

    def audit_page(self, *, actor: str | None = None, action: str | None = None,
                   target: str | None = None, before_seq: int | None = None,
                   limit: int = 50) -> list[AuditRecord]:
        """Entries matching the filters, newest first, older than ``before_seq``
        (``*`` in ``action``/``target`` matches anything)."""
        a = t.audit
        q = sa.select(a)
        if before_seq is not None:
            q = q.where(a.c.seq < before_seq)
        if actor:
            q = q.where(a.c.actor == actor)
        if action:
            q = q.where(a.c.action.like(action.replace("*", "%")))
        if target:
            q = q.where(a.c.target.like(target.replace("*", "%")))
        with self._db.read() as conn:
            rows = conn.execute(q.order_by(a.c.seq.desc()).limit(limit)).all()
        return [AuditRecord(x.seq, x.at, x.actor, x.action, x.target, json.loads(x.details),
                            x.prev_hash, x.hash) for x in rows]
