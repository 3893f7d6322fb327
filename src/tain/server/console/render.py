"""Rendering console pages, and the route class that turns every error of a console
route into an HTML page (or the sign-in redirect) instead of the API's JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from tain.errors import InvalidRequest, TainError
from tain.server.console.nav import visible_nav
from tain.server.console.state import console_state
from tain.server.console.urls import PREFIX
from tain.server.console.viewer import SignInRequired, Viewer

log = logging.getLogger("tain.console")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(request: Request, template: str, viewer: Viewer | None, *, status: int = 200,
         **values: Any) -> HTMLResponse:
    """Render ``template`` with the values every page uses (viewer, CSRF token, menu)."""
    html = fragment(request, template, viewer, **values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def fragment(request: Request, template: str, viewer: Viewer | None, **values: Any) -> str:
    """``template`` rendered to a string (a page, or a part of one)."""
    state = console_state(request)
    return state.templates.get_template(template).render(
        request=request, viewer=viewer, csrf=viewer.csrf if viewer else "",
        nav=visible_nav(viewer), base=PREFIX, now=state.site.clock(),
        notice=request.query_params.get("notice", ""), **values,
    )


def see_other(url: str) -> RedirectResponse:
    """The answer to a form post: go (GET) to ``url``."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return _to_sign_in(request)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()))
                return error_page(request, InvalidRequest(f"{where}: {first.get('msg')}"))
            except TainError as exc:
                return error_page(request, exc)

        return guarded


def error_page(request: Request, exc: TainError) -> Response:
    if exc.http_status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    if request.headers.get("hx-request"):
        return HTMLResponse(f'<p class="error">{_escape(str(exc))}</p>',
                            status_code=exc.http_status, headers=SECURITY_HEADERS)
    return page(request, "error.html", None, status=exc.http_status, error=exc)


def _to_sign_in(request: Request) -> Response:
    target = f"{PREFIX}/login?next={quote(request.url.path, safe='/')}"
    if request.headers.get("hx-request"):  # htmx: reload the whole page into sign-in
        return Response(status_code=401, headers={"HX-Redirect": target})
    if request.method != "GET":
        return page(request, "error.html", None, status=401,
                    error=TainError("your session has ended; sign in again"))
    return see_other(target)


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
