"""Pull source jobs, their runs and their leases (see ``tain.sources``).

A job row holds the spec (JSON) and the latest figures. ``claim_source`` is the only
way a run starts: one UPDATE that sets the lease where the job is due, not paused and
its lease expired (or never set), so among several schedulers on one database exactly
one gets a due job. A running job renews its lease; a killed process's lease expires,
and ``reset_stale_sources`` then marks the job and its open run failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from tain.catalog import schema as t
from tain.catalog.sqlbase import SqlBase
from tain.errors import Conflict, NotFound

j, r = t.source_jobs, t.source_runs
MAX_LOG_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class SourceRecord:
    name: str
    repo: str
    spec: dict[str, Any]
    from_config: bool
    paused: bool
    state: str
    created_at: float
    next_run: float | None
    last_start: float | None
    last_end: float | None
    last_duration: float | None
    last_bytes: int | None
    last_files: int | None
    last_revision: int | None
    last_error: str | None
    lease_owner: str | None
    lease_expires: float | None

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__}
        if self.paused and self.state != "syncing":
            out["state"] = "paused"
        return out


@dataclass(frozen=True, slots=True)
class SourceRun:
    id: int
    job: str
    owner: str
    started_at: float
    ended_at: float | None
    state: str
    bytes: int
    files: int
    revision: int | None
    error: str | None
    log: str

    def to_json(self, *, with_log: bool = True) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__}
        if not with_log:
            del out["log"]
        return out


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended: ``state`` is "success" or "failed"."""

    state: str
    bytes: int = 0
    files: int = 0
    revision: int | None = None
    error: str | None = None
    log: str = ""


class SourceCatalog(SqlBase):
    def add_source(self, name: str, repo: str, spec: dict[str, Any], *, from_config: bool,
                   next_run: float | None, actor: str) -> SourceRecord:
        with self._db.write() as conn:
            if conn.execute(sa.select(j.c.name).where(j.c.name == name)).first():
                raise Conflict(f"source {name!r} already exists",
                               hint="remove it first or pick another name")
            conn.execute(sa.insert(j).values(
                name=name, repo=repo, spec=json.dumps(spec, sort_keys=True),
                from_config=from_config, paused=False, state="idle",
                created_at=self._clock(), next_run=next_run))
            self._audit(conn, actor, "source.add", name, repo=repo, url=spec.get("url"))
            return _job(_job_row(conn, name))

    def replace_source_spec(self, name: str, repo: str, spec: dict[str, Any], *,
                            next_run: float | None, actor: str) -> bool:
        """Store a changed spec (a tain.toml edit); False when it is unchanged."""
        text = json.dumps(spec, sort_keys=True)
        with self._db.write() as conn:
            row = _job_row(conn, name)
            if row.spec == text and row.repo == repo:
                return False
            conn.execute(sa.update(j).where(j.c.name == name).values(
                repo=repo, spec=text, from_config=True, next_run=next_run))
            self._audit(conn, actor, "source.update", name, repo=repo, url=spec.get("url"))
            return True

    def get_source(self, name: str) -> SourceRecord:
        with self._db.read() as conn:
            return _job(_job_row(conn, name))

    def list_sources(self) -> list[SourceRecord]:
        with self._db.read() as conn:
            return [_job(row) for row in conn.execute(sa.select(j).order_by(j.c.name))]

    def remove_source(self, name: str, *, actor: str) -> None:
        with self._db.write() as conn:
            _job_row(conn, name)
            conn.execute(sa.delete(r).where(r.c.job == name))
            conn.execute(sa.delete(j).where(j.c.name == name))
            self._audit(conn, actor, "source.remove", name)

    def set_source_paused(self, name: str, paused: bool, *, actor: str) -> SourceRecord:
        with self._db.write() as conn:
            _job_row(conn, name)
            conn.execute(sa.update(j).where(j.c.name == name).values(paused=paused))
            self._audit(conn, actor, "source.pause" if paused else "source.resume", name)
            return _job(_job_row(conn, name))

    def schedule_source(self, name: str, next_run: float | None, *,
                        actor: str | None = None) -> SourceRecord:
        """Set when the job is next due; with an actor (run-now) it is audited."""
        with self._db.write() as conn:
            _job_row(conn, name)
            conn.execute(sa.update(j).where(j.c.name == name).values(next_run=next_run))
            if actor:
                self._audit(conn, actor, "source.run", name)
            return _job(_job_row(conn, name))

    def claim_source(self, name: str, owner: str, *, lease_seconds: float) -> int | None:
        """Take a due job's lease and open a run; the run id, or None if another
        process holds it, it is paused, or it is not due."""
        now = self._clock()
        with self._db.write() as conn:
            taken = conn.execute(sa.update(j).where(
                j.c.name == name, j.c.paused.is_(False), j.c.next_run <= now,
                sa.or_(j.c.lease_expires.is_(None), j.c.lease_expires < now),
            ).values(lease_owner=owner, lease_expires=now + lease_seconds, state="syncing",
                     last_start=now, last_error=None))
            if taken.rowcount != 1:
                return None
            result = conn.execute(sa.insert(r).values(
                job=name, owner=owner, started_at=now, state="syncing", bytes=0, files=0,
                log=""))
            key = result.inserted_primary_key
            return int(key[0]) if key else None

    def renew_source_lease(self, name: str, owner: str, *, lease_seconds: float) -> bool:
        with self._db.write() as conn:
            done = conn.execute(sa.update(j).where(j.c.name == name, j.c.lease_owner == owner)
                                .values(lease_expires=self._clock() + lease_seconds))
            return done.rowcount == 1

    def finish_source_run(self, name: str, owner: str, run_id: int, outcome: RunOutcome, *,
                          next_run: float | None, keep_runs: int) -> None:
        """Close the run, record the job's figures, release the lease, drop old runs."""
        now = self._clock()
        with self._db.write() as conn:
            started = conn.execute(sa.select(r.c.started_at).where(r.c.id == run_id)).scalar()
            conn.execute(sa.update(r).where(r.c.id == run_id, r.c.owner == owner).values(
                ended_at=now, state=outcome.state, bytes=outcome.bytes, files=outcome.files,
                revision=outcome.revision, error=outcome.error,
                log=outcome.log[-MAX_LOG_CHARS:]))
            values: dict[str, Any] = dict(
                state=outcome.state, last_end=now, last_bytes=outcome.bytes,
                last_files=outcome.files, last_error=outcome.error, next_run=next_run,
                last_duration=now - started if started is not None else None,
                lease_owner=None, lease_expires=None)
            if outcome.revision is not None:
                values["last_revision"] = outcome.revision
            conn.execute(sa.update(j).where(j.c.name == name, j.c.lease_owner == owner)
                         .values(**values))
            _prune_runs(conn, name, keep_runs)

    def reset_stale_sources(self) -> list[str]:
        """Jobs left "syncing" by a process whose lease expired (killed, or hung):
        mark them and their open runs failed, clear the lease. Returns their names."""
        now = self._clock()
        reason = "interrupted: the process running it stopped (its lease expired)"
        with self._db.read() as conn:  # every scheduler asks often: no write lock if none
            if conn.execute(sa.select(j.c.name).where(
                    j.c.state == "syncing", j.c.lease_expires < now)).first() is None:
                return []
        with self._db.write() as conn:
            names = list(conn.execute(sa.select(j.c.name).where(
                j.c.state == "syncing", j.c.lease_expires < now)).scalars())
            for name in names:
                conn.execute(sa.update(j).where(
                    j.c.name == name, j.c.lease_expires < now
                ).values(state="failed", last_error=reason, last_end=now, lease_owner=None,
                         lease_expires=None))
                conn.execute(sa.update(r).where(r.c.job == name, r.c.ended_at.is_(None))
                             .values(state="failed", error=reason, ended_at=now))
        return names

    def list_source_runs(self, name: str, *, limit: int = 20) -> list[SourceRun]:
        with self._db.read() as conn:
            _job_row(conn, name)
            rows = conn.execute(sa.select(r).where(r.c.job == name)
                                .order_by(r.c.id.desc()).limit(limit))
            return [SourceRun(**row._mapping) for row in rows]

    def get_source_run(self, name: str, run_id: int) -> SourceRun:
        with self._db.read() as conn:
            row = conn.execute(sa.select(r).where(r.c.job == name, r.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"source {name!r} has no run {run_id}")
        return SourceRun(**row._mapping)


def _prune_runs(conn: Connection, name: str, keep: int) -> None:
    kept = list(conn.execute(sa.select(r.c.id).where(r.c.job == name)
                             .order_by(r.c.id.desc()).limit(keep)).scalars())
    if kept:
        conn.execute(sa.delete(r).where(r.c.job == name, r.c.id < min(kept)))


def _job_row(conn: Connection, name: str) -> Row[Any]:
    row = conn.execute(sa.select(j).where(j.c.name == name)).first()
    if row is None:
        raise NotFound(f"no source {name!r}", hint="see 'tain source list'")
    return row


def _job(row: Row[Any]) -> SourceRecord:
    values = dict(row._mapping)
    values["spec"] = json.loads(values["spec"])
    return SourceRecord(**values)
