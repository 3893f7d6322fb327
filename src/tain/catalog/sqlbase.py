"""The shared state of the SQL catalog's parts: the database, the clock, and the
audit append that every mutation calls inside its own transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tain.catalog import schema as t
from tain.catalog.db import Database
from tain.core.audit import chain_hash


class SqlBase:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def _audit(
        self, conn: Connection, actor: str, action: str, target: str, **details: Any
    ) -> None:
        """Append one entry inside the caller's transaction (so it commits with it)."""
        head = conn.execute(
            sa.select(t.audit_head.c.seq, t.audit_head.c.hash)
            .where(t.audit_head.c.id == 1)
            .with_for_update()
        ).one()  # seeded by the first migration
        seq, prev = head.seq, head.hash
        at = self._clock()
        clean = json.loads(json.dumps(details, default=str))
        digest = chain_hash(prev, seq + 1, at, actor, action, target, clean)
        conn.execute(
            sa.insert(t.audit).values(
                seq=seq + 1, at=at, actor=actor, action=action, target=target,
                details=json.dumps(clean, sort_keys=True), prev_hash=prev, hash=digest,
            )
        )
        conn.execute(
            sa.update(t.audit_head).where(t.audit_head.c.id == 1).values(seq=seq + 1, hash=digest)
        )
