"""The overview page and its panels (repositories, agents, site), each refreshed by
htmx every few seconds from ``/console/panels/<name>``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

import tain
from tain.errors import NotFound
from tain.server.console.nav import Panel, add_panel, visible_panels
from tain.server.console.render import ConsoleRoute, fragment, page
from tain.server.console.viewer import Viewer, ViewerDep

router = APIRouter(route_class=ConsoleRoute)
REFRESH_SECONDS = 5
SILENT_AFTER = 120.0  # an agent heard from longer ago than this is shown in red


@router.get("/")
def overview(request: Request, viewer: ViewerDep) -> Response:
    panels = [(p, Markup(fragment(request, f"panels/{p.name}.html", viewer, panel=p,  # noqa: S704
                                  **p.load(viewer))))
              for p in visible_panels(viewer)]
    return page(request, "overview.html", viewer, panels=panels, refresh=REFRESH_SECONDS)


@router.get("/panels/{name}")
def panel(request: Request, name: str, viewer: ViewerDep) -> Response:
    for p in visible_panels(viewer):
        if p.name == name:
            return page(request, f"panels/{p.name}.html", viewer, panel=p, **p.load(viewer))
    raise NotFound(f"no overview panel {name!r}")


def repos_panel(viewer: Viewer) -> dict[str, Any]:
    catalog = viewer.state.site.catalog
    rows = []
    for repo in viewer.readable_repos():
        head = catalog.get_revision(repo.name, repo.head) if repo.head else None
        rows.append({"repo": repo, "head": head})
    return {"rows": rows}


def agents_panel(viewer: Viewer) -> dict[str, Any]:
    readable = {r.name for r in viewer.readable_repos()}
    agents = [a for a in viewer.state.site.catalog.list_agents() if a.report.repo in readable]
    return {"agents": agents, "silent_after": SILENT_AFTER}


def site_panel(viewer: Viewer) -> dict[str, Any]:
    site = viewer.state.site
    config = site.config
    info: dict[str, Any] = {
        "version": tain.__version__, "public_url": config.public_url or "",
        "catalog": config.database_url.split(":", 1)[0].split("+", 1)[0],
        "store": config.store.kind, "tls": config.tls_cert is not None,
    }
    if viewer.is_admin:
        info["blobs"], info["blob_bytes"] = site.catalog.blob_totals()
    return {"info": info}


add_panel(Panel("repos", "Repositories", repos_panel))
add_panel(Panel("agents", "Agents", agents_panel))
add_panel(Panel("site", "This site", site_panel))
