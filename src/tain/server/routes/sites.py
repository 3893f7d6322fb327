"""The sites of the network: ``GET /api/v1/sites`` (health, revisions, lag, rotation)
and ``GET /api/v1/sites/history`` (the lag history, for charts), and ``install``,
which wires the health checks and the redirector into the app."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request

from tain.catalog.models import Role
from tain.errors import NotFound
from tain.mirror.loop import HealthLoop, health_loop
from tain.mirror.redirector import Redirector
from tain.mirror.report import site_reports
from tain.server.deps import PrincipalDep, SiteDep
from tain.server.routes import redirect
from tain.service.auth import Principal, role_on
from tain.service.site import Site

router = APIRouter(prefix="/api/v1", tags=["sites"])


def install(app: FastAPI, site: Site) -> HealthLoop | None:
    """Add the sites API, ``/dl/`` when ``[redirector] enabled``, and return the health
    loop to run while the app runs (None when no sites are configured)."""
    config = site.config.redirector
    network = Redirector(site, config) if config is not None and config.active else None
    app.state.network = network
    app.include_router(router)
    if network is not None and network.config.enabled:
        app.include_router(redirect.router)
    loop = health_loop(site)
    app.state.health = loop
    return loop


def network_of(request: Request) -> Redirector | None:
    found: Redirector | None = request.app.state.network
    return found


def reports(site: Site, network: Redirector | None, who: Principal) -> list[dict[str, Any]]:
    """Every configured site with its health; repositories the caller cannot read are
    left out. Empty when the site lists no other sites."""
    if network is None:
        return []
    now = network.clock()
    return site_reports(network.config, network.health(),
                        visible=lambda repo: _can_read(site, who, repo),
                        load=lambda spec: network.site_load(spec, now))


@router.get("/sites")
def list_sites(request: Request, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    return {"sites": reports(site, network_of(request), who)}


@router.get("/sites/history")
def lag_history(site: SiteDep, who: PrincipalDep, repo: str, name: str | None = None,
                since: float | None = None, limit: int = 1000) -> dict[str, Any]:
    if not _can_read(site, who, repo):
        raise NotFound(f"no repository {repo!r}")
    samples = site.catalog.lag_history(site=name, repo=repo, since=since,
                                       limit=max(1, min(limit, 10000)))
    return {"repo": repo, "samples": [s.to_json() for s in samples]}


def _can_read(site: Site, who: Principal, repo: str) -> bool:
    if who.is_admin:
        return True
    try:
        found = site.reads.repo(repo)
    except NotFound:
        return False
    held = role_on(site.catalog, who, found)
    return held is not None and held >= Role.READ
