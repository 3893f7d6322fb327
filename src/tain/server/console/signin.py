"""Sign-in and sign-out pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tain.errors import AuthError
from tain.server.console.render import ConsoleRoute, page, see_other
from tain.server.console.state import console_state
from tain.server.console.urls import PREFIX
from tain.server.console.viewer import COOKIE, SignInRequired, get_poster, get_viewer

router = APIRouter(route_class=ConsoleRoute)


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    state = console_state(request)
    if state.sessions.resume(request.cookies.get(COOKIE)) is not None:
        return see_other(_safe_next(next))
    return page(request, "login.html", None, next=_safe_next(next))


@router.post("/login")
async def login(
    request: Request, username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "",
) -> Response:
    state = console_state(request)
    address = request.client.host if request.client else "unknown"
    try:
        secret, session = await run_in_threadpool(
            state.sessions.sign_in, username.strip(), password, address)
    except AuthError as exc:
        return page(request, "login.html", None, status=exc.http_status, error=str(exc),
                    username=username, next=_safe_next(next))
    response = see_other(_safe_next(next))
    response.set_cookie(
        COOKIE, secret, max_age=int(session.expires_at - session.created_at), path=PREFIX,
        httponly=True, samesite="lax", secure=_is_tls(request, state.site.config.tls_cert),
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked); without a live session there is nothing to end."""
    try:
        viewer = await get_poster(request, await run_in_threadpool(get_viewer, request))
    except SignInRequired:
        viewer = None
    if viewer is not None:
        await run_in_threadpool(viewer.state.sessions.sign_out, viewer.secret)
    response = see_other(f"{PREFIX}/login")
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="lax")
    return response


def _safe_next(target: str) -> str:
    """Only a console path: never an open redirect to another site."""
    if target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def _is_tls(request: Request, tls_cert: object) -> bool:
    """Secure cookies when this server speaks TLS or a trusted proxy says the client
    did (uvicorn applies ``X-Forwarded-Proto`` only from ``FORWARDED_ALLOW_IPS``)."""
    return tls_cert is not None or request.url.scheme == "https"
