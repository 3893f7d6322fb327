"""Mirror agents: their heartbeats, and the list a site admin reads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from tain.catalog.agents import AgentReport
from tain.catalog.models import Role
from tain.server.deps import PrincipalDep, SiteDep
from tain.server.routes.common import repo_for
from tain.service.auth import require_admin

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


class HeartbeatBody(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64)
    repo: str = Field(min_length=1, max_length=64)
    host: str = Field(default="", max_length=255)
    directory: str = Field(default="", max_length=4096)
    version: str = Field(default="", max_length=32)
    queue_length: int = Field(default=0, ge=0)
    last_revision: int | None = Field(default=None, ge=0)
    current_site: str = Field(default="", max_length=2048)
    last_error: str | None = Field(default=None, max_length=10_000)


@router.post("/heartbeat")
def heartbeat(
    body: HeartbeatBody, request: Request, site: SiteDep, who: PrincipalDep
) -> dict[str, Any]:
    """Record an agent's state; needs write access to the repository it mirrors into."""
    repo = repo_for(site, who, body.repo, Role.WRITE)
    report = AgentReport(
        body.agent_id, body.repo, body.host, body.directory, body.version,
        body.queue_length, body.last_revision, body.current_site, body.last_error,
    )
    address = request.client.host if request.client else ""
    record = site.catalog.record_heartbeat(report, user=who.name, address=address)
    return {"agent": record.to_json(), "head": repo.head, "time": site.clock()}


@router.get("")
def list_agents(site: SiteDep, who: PrincipalDep, repo: str | None = None) -> dict[str, Any]:
    require_admin(who)
    now = site.clock()
    return {"agents": [a.to_json(now) for a in site.catalog.list_agents(repo=repo)],
            "time": now}


@router.delete("/{agent_id}")
def forget_agent(agent_id: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    site.catalog.forget_agent(agent_id, actor=who.name)
    return {"forgotten": agent_id}
