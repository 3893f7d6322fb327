"""Mirror state in the catalog: sync traces, head statements and the key chain."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tain.catalog import schema as t
from tain.catalog.repos import _repo_row
from tain.catalog.sqlbase import SqlBase
from tain.core.statements import Rotation


@dataclass(frozen=True)
class Trace:
    """What a mirror last did for one repository."""

    repo: str
    upstream: str
    revision: int
    upstream_head: int
    last_attempt_at: float | None
    last_success_at: float | None
    last_bytes: int
    last_duration: float
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MirrorStateCatalog(SqlBase):
    def record_trace(self, trace: Trace) -> None:
        """Insert or replace the trace of ``trace.repo`` (status, so not audited)."""
        tr = t.mirror_trace
        with self._db.write() as conn:
            conn.execute(sa.delete(tr).where(tr.c.repo == trace.repo))
            conn.execute(sa.insert(tr).values(**trace.to_json()))

    def list_traces(self) -> list[Trace]:
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.mirror_trace).order_by(t.mirror_trace.c.repo))
            return [Trace(**row._asdict()) for row in rows]

    def put_head(self, repo: str, revision: int, body: dict[str, Any]) -> None:
        """Store the repository's head statement, unless a newer one is stored."""
        hs = t.head_statements
        with self._db.write() as conn:
            row = _repo_row(conn, repo)
            old = conn.execute(sa.select(hs.c.revision).where(hs.c.repo_id == row.id)).first()
            if old is not None and old.revision > revision:
                return
            conn.execute(sa.delete(hs).where(hs.c.repo_id == row.id))
            conn.execute(sa.insert(hs).values(repo_id=row.id, revision=revision,
                                              body=json.dumps(body, sort_keys=True)))

    def get_head(self, repo: str) -> dict[str, Any] | None:
        hs = t.head_statements
        with self._db.read() as conn:
            row = _repo_row(conn, repo)
            found = conn.execute(sa.select(hs.c.body).where(hs.c.repo_id == row.id)).first()
        return None if found is None else dict(json.loads(found.body))

    def key_chain(self) -> list[Rotation]:
        kr, ks = t.key_rotations, t.key_rotation_starts
        with self._db.read() as conn:
            rows = conn.execute(sa.select(kr).order_by(kr.c.seq)).all()
            starts = {x.seq: json.loads(x.body) for x in conn.execute(sa.select(ks))}
        return [Rotation(x.seq, x.old_key, x.new_key, x.at, x.signature, starts.get(x.seq))
                for x in rows]

    def set_key_chain(self, chain: list[Rotation], *, actor: str) -> None:
        """Replace the chain (a mirror copies its upstream's; a new root starts one).
        The caller has verified it. Audited when it changes."""
        kr = t.key_rotations
        with self._db.write() as conn:
            old = conn.execute(sa.select(kr.c.seq, kr.c.new_key).order_by(kr.c.seq)).all()
            if [(x.seq, x.new_key) for x in old] == [(x.seq, x.new) for x in chain]:
                return
            conn.execute(sa.delete(kr))
            conn.execute(sa.delete(t.key_rotation_starts))
            for link in chain:
                _insert_link(conn, link)
            self._audit(conn, actor, "key.chain", "site", links=len(chain),
                        current=chain[-1].new if chain else None)

    def start_key_chain(self, public_key: str, at: float) -> None:
        """Name the site's key as the root of an empty chain (not audited: it is the key
        ``tain init`` made, not a change). A chain that exists is left alone."""
        kr = t.key_rotations
        with self._db.write() as conn:
            if conn.execute(sa.select(kr.c.seq).limit(1)).first() is None:
                conn.execute(sa.insert(kr).values(seq=0, old_key=None, new_key=public_key,
                                                  at=at, signature=None))

    def add_rotation(self, link: Rotation, *, actor: str) -> None:
        with self._db.write() as conn:
            _insert_link(conn, link)
            self._audit(conn, actor, "key.rotate", "site", old=link.old, new=link.new,
                        seq=link.seq)

    def rotate_at_heads(self, make_link: Callable[[dict[str, int]], Rotation], *,
                        actor: str) -> Rotation:
        """Add the rotation ``make_link(starts)`` returns, where ``starts`` names
        head + 1 of every repository, with every repository row locked: no commit
        runs between reading the heads and ``make_link`` (which switches the key
        commits sign with)."""
        with self._db.write() as conn:
            rows = conn.execute(sa.select(t.repos.c.name, t.repos.c.head)
                                .order_by(t.repos.c.id).with_for_update()).all()
            link = make_link({r.name: r.head + 1 for r in rows})
            _insert_link(conn, link)
            self._audit(conn, actor, "key.rotate", "site", old=link.old, new=link.new,
                        seq=link.seq)
        return link


def _insert_link(conn: Connection, link: Rotation) -> None:
    conn.execute(sa.insert(t.key_rotations).values(
        seq=link.seq, old_key=link.old, new_key=link.new, at=link.at,
        signature=link.signature))
    if link.starts is not None:
        conn.execute(sa.insert(t.key_rotation_starts).values(
            seq=link.seq, body=json.dumps(dict(sorted(link.starts.items())))))
