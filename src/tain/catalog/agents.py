"""Mirror agents as the site sees them: the latest heartbeat of each.

An agent reports its state every few seconds (``record_heartbeat``), which inserts or
replaces one row keyed by the agent's id; ``first_seen`` survives every update.
Heartbeats are status, not changes to data, so they are not audited; ``forget_agent``
(removing a stale agent) is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from tain.catalog import schema as t
from tain.catalog.sqlbase import SqlBase
from tain.errors import InvalidRequest, NotFound

_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class AgentReport:
    """What an agent says about itself in one heartbeat."""

    agent_id: str
    repo: str
    host: str
    directory: str
    version: str
    queue_length: int
    last_revision: int | None
    current_site: str
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent's latest heartbeat, with who sent it from where and when."""

    report: AgentReport
    user: str
    address: str
    first_seen: float
    last_seen: float

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        r = self.report
        out: dict[str, Any] = {
            "agent_id": r.agent_id, "repo": r.repo, "host": r.host, "directory": r.directory,
            "version": r.version, "queue_length": r.queue_length,
            "last_revision": r.last_revision, "current_site": r.current_site,
            "last_error": r.last_error, "user": self.user, "address": self.address,
            "first_seen": self.first_seen, "last_seen": self.last_seen,
        }
        if now is not None:
            out["seconds_since_seen"] = max(0.0, now - self.last_seen)
        return out


def check_agent_id(agent_id: str) -> str:
    if not _AGENT_ID.match(agent_id):
        raise InvalidRequest(
            f"invalid agent id {agent_id[:80]!r}",
            hint="use 1-64 letters, digits, '.', '_' or '-'",
        )
    return agent_id


class AgentCatalog(SqlBase):
    def record_heartbeat(self, report: AgentReport, *, user: str, address: str) -> AgentRecord:
        """Insert or replace the agent's row; ``first_seen`` is kept from the first one."""
        check_agent_id(report.agent_id)
        if report.queue_length < 0:
            raise InvalidRequest("queue_length must not be negative")
        now = self._clock()
        values = {
            "repo": report.repo, "host": report.host[:255], "directory": report.directory,
            "version": report.version[:32], "queue_length": report.queue_length,
            "last_revision": report.last_revision, "current_site": report.current_site,
            "last_error": report.last_error[:MAX_ERROR_CHARS] if report.last_error else None,
            "user_name": user, "address": address[:64], "last_seen": now,
        }
        a = t.agents
        with self._db.write() as conn:
            first = conn.execute(
                sa.select(a.c.first_seen).where(a.c.id == report.agent_id)
            ).scalar()
            if first is None:
                conn.execute(
                    sa.insert(a).values(id=report.agent_id, first_seen=now, **values)
                )
            else:
                conn.execute(sa.update(a).where(a.c.id == report.agent_id).values(**values))
            row = conn.execute(sa.select(a).where(a.c.id == report.agent_id)).one()
        return _record(row)

    def list_agents(self, *, repo: str | None = None) -> list[AgentRecord]:
        """Every known agent (of one repository), by repository, host and directory."""
        a = t.agents
        q = sa.select(a).order_by(a.c.repo, a.c.host, a.c.directory, a.c.id)
        if repo is not None:
            q = q.where(a.c.repo == repo)
        with self._db.read() as conn:
            return [_record(r) for r in conn.execute(q).all()]

    def forget_agent(self, agent_id: str, *, actor: str) -> None:
        """Remove an agent's row (it reappears with its next heartbeat)."""
        a = t.agents
        with self._db.write() as conn:
            row = conn.execute(sa.select(a).where(a.c.id == agent_id)).first()
            if row is None:
                raise NotFound(f"no agent {agent_id!r}", hint="see 'tain agents'")
            conn.execute(sa.delete(a).where(a.c.id == agent_id))
            self._audit(conn, actor, "agent.forget", agent_id, repo=row.repo, host=row.host,
                        directory=row.directory)


def _record(row: Row[Any]) -> AgentRecord:
    report = AgentReport(
        row.id, row.repo, row.host, row.directory, row.version, row.queue_length,
        row.last_revision, row.current_site, row.last_error,
    )
    return AgentRecord(report, row.user_name, row.address, row.first_seen, row.last_seen)
