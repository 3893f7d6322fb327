"""The append-only, hash-chained audit log."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from tain.catalog import schema as t
from tain.catalog.sqlbase import SqlBase
from tain.core.audit import GENESIS, AuditRecord, verify_chain


class AuditLog(SqlBase):
    def audit_entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: float | None = None,
        limit: int = 100,
        after_seq: int = 0,
    ) -> list[AuditRecord]:
        q = sa.select(t.audit).where(t.audit.c.seq > after_seq)
        if actor:
            q = q.where(t.audit.c.actor == actor)
        if action:
            q = q.where(t.audit.c.action.like(action.replace("*", "%")))
        if target:
            q = q.where(t.audit.c.target.like(target.replace("*", "%")))
        if since is not None:
            q = q.where(t.audit.c.at >= since)
        q = q.order_by(t.audit.c.seq.desc()).limit(limit)
        with self._db.read() as conn:
            rows = conn.execute(q).all()
        return [_record(r) for r in reversed(rows)]

    def verify_audit(self) -> tuple[int, list[str]]:
        """Check the whole chain and its head. Returns (entries checked, problems)."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.audit).order_by(t.audit.c.seq)).all()
            head = conn.execute(sa.select(t.audit_head)).first()
        records = [_record(r) for r in rows]
        problems = verify_chain(records)
        # an empty log ends at the seed: entry 0 with the genesis hash
        last_seq, last_hash = (records[-1].seq, records[-1].hash) if records else (0, GENESIS)
        if head and (head.seq != last_seq or head.hash != last_hash):
            problems.append(
                f"the newest entries were removed: the head says entry {head.seq} "
                f"but the log ends at {last_seq}"
            )
        return len(records), problems


def _record(r: Row[Any]) -> AuditRecord:
    return AuditRecord(
        r.seq, r.at, r.actor, r.action, r.target, json.loads(r.details), r.prev_hash, r.hash
    )
