"""The audit log (site admins): filtered, paged from the newest entry, with the
result of verifying the whole hash chain (loaded by htmx once the page is shown)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tain.server.console.render import ConsoleRoute, page
from tain.server.console.viewer import ViewerDep

router = APIRouter(route_class=ConsoleRoute)
PER_PAGE = 50


@router.get("/audit")
def audit(request: Request, viewer: ViewerDep, actor: str = "", action: str = "",
          target: str = "", before: int | None = None) -> Response:
    viewer.require_admin()
    catalog = viewer.state.site.catalog
    entries = catalog.audit_page(actor=actor.strip() or None, action=action.strip() or None,
                                 target=target.strip() or None, before_seq=before,
                                 limit=PER_PAGE)
    older = entries[-1].seq if len(entries) == PER_PAGE and entries[-1].seq > 1 else None
    filters = {"actor": actor, "action": action, "target": target}
    return page(request, "audit.html", viewer, entries=entries, older=older, filters=filters)


@router.get("/audit/verify")
def verify(request: Request, viewer: ViewerDep) -> Response:
    """The chain check reads the whole log, so the page loads it after itself."""
    viewer.require_admin()
    checked, problems = viewer.state.site.catalog.verify_audit()
    return page(request, "audit_verify.html", viewer, checked=checked, problems=problems)
