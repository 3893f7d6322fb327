"""Monitoring wired into the app: the measuring middleware, the routes, and the
``Monitoring`` value other parts reach through ``monitoring_of(app)`` (to register
providers, see ``tain.monitor.providers``)."""

from __future__ import annotations

from fastapi import FastAPI

from tain.monitor.runtime import Monitoring
from tain.server.observe import ObserveMiddleware
from tain.server.routes import monitoring as routes
from tain.service.site import Site


def install_monitoring(app: FastAPI, site: Site) -> Monitoring:
    found = Monitoring(site)
    app.state.monitoring = found
    app.add_middleware(ObserveMiddleware, http=found.http, usage=site.usage)
    app.include_router(routes.router)
    return found


def monitoring_of(app: FastAPI) -> Monitoring:
    found: Monitoring = app.state.monitoring
    return found
