"""``/api/v1/sources``: pull source jobs (site admins only). The request body of a new
job is the spec as ``tain source add`` and ``[[sources.jobs]]`` write it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

from tain.errors import InvalidRequest
from tain.server.deps import PrincipalDep, SiteDep
from tain.service.auth import require_admin
from tain.service.site import Site
from tain.sources.jobs import add_job, job_status, remove_job, sources_status

router = APIRouter(prefix="/api/v1/sources", tags=["sources"])


def _wake(request: Request) -> None:
    scheduler = getattr(request.app.state, "source_scheduler", None)
    if scheduler is not None:
        scheduler.wake()


def _show(site: Site, name: str, runs: int = 10) -> dict[str, Any]:
    body = job_status(site, site.catalog.get_source(name))
    body["runs"] = [r.to_json(with_log=False)
                    for r in site.catalog.list_source_runs(name, limit=runs)]
    return body


@router.get("")
def list_sources(site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    return {"sources": sources_status(site), "time": site.clock()}


@router.post("", status_code=201)
def add_source(request: Request, site: SiteDep, who: PrincipalDep,
               body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    require_admin(who)
    record = add_job(site, body, actor=who.name)
    _wake(request)
    return job_status(site, record)


@router.get("/{name}")
def show_source(name: str, site: SiteDep, who: PrincipalDep, runs: int = 10) -> dict[str, Any]:
    require_admin(who)
    if not 0 <= runs <= 1000:
        raise InvalidRequest("runs must be between 0 and 1000")
    return _show(site, name, runs)


@router.get("/{name}/runs/{run_id}")
def show_run(name: str, run_id: int, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    return site.catalog.get_source_run(name, run_id).to_json()


@router.delete("/{name}")
def remove_source(name: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    remove_job(site, name, actor=who.name)
    return {"removed": name}


@router.post("/{name}/pause")
def pause_source(name: str, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    return job_status(site, site.catalog.set_source_paused(name, True, actor=who.name))


@router.post("/{name}/resume")
def resume_source(name: str, request: Request, site: SiteDep,
                  who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    record = site.catalog.set_source_paused(name, False, actor=who.name)
    _wake(request)
    return job_status(site, record)


@router.post("/{name}/run")
def run_source_now(name: str, request: Request, site: SiteDep,
                   who: PrincipalDep) -> dict[str, Any]:
    """Make the job due now; a scheduler (of this or another site on the same
    database) starts it within its poll interval, this one at once."""
    require_admin(who)
    record = site.catalog.schedule_source(name, site.clock(), actor=who.name)
    _wake(request)
    return job_status(site, record)
