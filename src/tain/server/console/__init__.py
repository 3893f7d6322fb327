"""The web console at ``/console/``: server-rendered pages over the site's services.

Modules: ``viewer`` (sessions and CSRF), ``render`` (pages and error pages), ``nav``
(the menu and overview panel registries), one module per page group, ``static``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from tain.server.console import (
    access,
    account,
    audit,
    browse,
    downloads,
    network,
    operations,
    overview,
    repo_actions,
    signin,
    static,
    stats,
)
from tain.server.console.state import new_console_state
from tain.service.site import Site

router = APIRouter(prefix="/console", include_in_schema=False)
PARTS = (signin, overview, browse, downloads, repo_actions, access, account, audit, operations,
         stats, network, static)
for part in PARTS:
    router.include_router(part.router)


def install(app: FastAPI, site: Site) -> None:
    """The console's pages, and its state made now: requests only read it."""
    app.state.console = new_console_state(site)
    app.include_router(router)
