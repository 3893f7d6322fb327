"""Operations (site admins): the last scrub and backup with their results, the
schedules and when each job is next due, the store's disks, and garbage collection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from tain.server.console.render import ConsoleRoute, page
from tain.server.console.viewer import PosterDep, ViewerDep
from tain.server.routes.status import site_status
from tain.service.gc import collect_garbage

router = APIRouter(route_class=ConsoleRoute)


@router.get("/ops")
def operations(request: Request, viewer: ViewerDep) -> Response:
    viewer.require_admin()
    status = site_status(request, viewer.state.site, viewer.principal)
    return page(request, "ops.html", viewer, site_status=status, gc=None)


@router.post("/ops/gc")
def gc(request: Request, viewer: PosterDep, dry_run: Annotated[str, Form()] = "") -> Response:
    viewer.require_admin()
    report = collect_garbage(viewer.state.site, actor=viewer.name, dry_run=bool(dry_run))
    status = site_status(request, viewer.state.site, viewer.principal)
    return page(request, "ops.html", viewer, site_status=status, gc=report)
