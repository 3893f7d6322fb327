"""``/metrics`` for Prometheus, usage statistics and alerts.

``/metrics`` is allowed with the ``[metrics] token``, with a site admin's token, or
without a token from where ``[metrics] anonymous`` allows (loopback by default).
Statistics of one repository need read access to it; of the whole site, a site admin.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from tain.catalog.models import Role
from tain.core.alertstate import Step
from tain.core.charts import day_range
from tain.errors import AuthError, InvalidRequest, NotFound
from tain.monitor.runtime import Monitoring
from tain.server.deps import PrincipalDep, SiteDep, get_principal, get_site
from tain.server.routes.common import repo_for
from tain.service.auth import Principal, require_admin
from tain.service.site import Site

router = APIRouter(tags=["monitoring"])
_DAY_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
Days = Annotated[int, Query(ge=1, le=3660)]


def monitoring(request: Request) -> Monitoring:
    found: Monitoring = request.app.state.monitoring
    return found


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    site = get_site(request)
    await run_in_threadpool(_may_scrape, request, site)
    body = await run_in_threadpool(generate_latest, monitoring(request).registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _may_scrape(request: Request, site: Site) -> None:
    config = site.config.monitoring.metrics
    if not config.enabled:
        raise NotFound("metrics are disabled on this site", hint="[metrics] enabled = true")
    header = request.headers.get("authorization")
    if header:
        scheme, _, secret = header.partition(" ")
        if (config.token and scheme.lower() == "bearer"
                and hmac.compare_digest(secret.strip().encode(), config.token.encode())):
            return
        require_admin(get_principal(request))
        return
    client = request.client.host if request.client else ""
    if config.anonymous == "all" or (config.anonymous == "loopback" and _is_loopback(client)):
        return
    raise AuthError("/metrics needs the [metrics] token or a site admin's token")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- statistics ---------------------------------------------------------------------------


def _scope(site: Site, who: Principal, repo: str | None, days: int, since: str | None,
           until: str | None) -> dict[str, Any]:
    if repo:
        repo_for(site, who, repo, Role.READ)
    else:
        require_admin(who)
    now = site.clock()
    for value in (since, until):
        if value is not None and not _DAY_TEXT.match(value):
            raise InvalidRequest(f"{value!r} is not a day (YYYY-MM-DD)")
    first, last = day_range(now, days)
    return {"since": since or first, "until": until or last, "repo": repo or None}


@router.get("/api/v1/stats/downloads")
def download_stats(site: SiteDep, who: PrincipalDep, days: Days = 30, repo: str | None = None,
                   site_name: Annotated[str | None, Query(alias="site")] = None,
                   since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Downloads and bytes served per day, site and repository."""
    scope = _scope(site, who, repo, days, since, until)
    rows = site.catalog.download_stats(**scope, site=site_name)
    return {**scope, "days": [r.to_json() for r in rows],
            "total": {"downloads": sum(r.downloads for r in rows),
                      "bytes": sum(r.bytes for r in rows)}}


@router.get("/api/v1/stats/popular")
def popular(site: SiteDep, who: PrincipalDep, days: Days = 30, repo: str | None = None,
            site_name: Annotated[str | None, Query(alias="site")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 20, since: str | None = None,
            until: str | None = None) -> dict[str, Any]:
    """The most downloaded paths over the days."""
    scope = _scope(site, who, repo, days, since, until)
    rows = site.catalog.popular_paths(**scope, site=site_name, limit=limit)
    return {**scope, "paths": [r.to_json() for r in rows]}


@router.get("/api/v1/stats/pushes")
def push_stats(site: SiteDep, who: PrincipalDep, days: Days = 30, repo: str | None = None,
               site_name: Annotated[str | None, Query(alias="site")] = None,
               since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Commits, bytes received, files changed and commit latency per day."""
    scope = _scope(site, who, repo, days, since, until)
    rows = site.catalog.push_stats(**scope, site=site_name)
    return {**scope, "days": [r.to_json() for r in rows]}


@router.post("/api/v1/stats/flush")
def flush_stats(request: Request, who: PrincipalDep) -> dict[str, Any]:
    """Write the counts held in memory now (they are flushed every few seconds anyway)."""
    require_admin(who)
    return {"rows": monitoring(request).flush()}


# -- alerts --------------------------------------------------------------------------------


@router.get("/api/v1/alerts")
def list_alerts(site: SiteDep, who: PrincipalDep,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Open alerts (oldest first) and recently resolved ones (newest first)."""
    require_admin(who)
    records = site.catalog.list_alerts(limit=limit)
    return {"open": [a.to_json() for a in records if a.is_open],
            "recent": [a.to_json() for a in records if not a.is_open],
            "time": site.clock()}


@router.post("/api/v1/alerts/check")
def check_alerts(request: Request, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    """Evaluate the rules now (the engine does it every ``[alerts] check_every``)."""
    require_admin(who)
    result = monitoring(request).engine.check()
    return {"steps": [{"kind": s.kind, "key": _step_key(s)} for s in result.steps],
            "deliveries": [d.to_json() for d in result.deliveries],
            "open": [a.to_json() for a in site.catalog.list_alerts(open_only=True)]}


def _step_key(step: Step) -> str:
    return step.alert.key if step.alert else step.current.key if step.current else ""


@router.post("/api/v1/alerts/test")
def test_alerts(request: Request, who: PrincipalDep) -> dict[str, Any]:
    """Send a test message to every configured channel."""
    require_admin(who)
    return {"deliveries": [d.to_json() for d in monitoring(request).send_test()]}
