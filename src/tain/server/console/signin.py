"""Sign-in and sign-out pages.

The sign-in form carries a pre-session CSRF token (login CSRF: another site signing a
victim into the attacker's account): a random value in a short-lived HttpOnly,
SameSite=Strict cookie, echoed in a hidden field and compared in constant time before
the password is even looked at, so a forged post never counts towards the lockout.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tain.errors import AuthError
from tain.server.console.render import ConsoleRoute, page, see_other
from tain.server.console.state import console_state
from tain.server.console.urls import PREFIX
from tain.server.console.viewer import COOKIE, SignInRequired, get_poster, get_viewer

router = APIRouter(route_class=ConsoleRoute)
LOGIN_COOKIE = "tain_login_csrf"
LOGIN_CSRF_SECONDS = 1800
_TOKEN_SHAPE = re.compile(r"[0-9a-f]{64}")


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    state = console_state(request)
    if state.sessions.resume(request.cookies.get(COOKIE)) is not None:
        return see_other(_safe_next(next))
    return _login_page(request, next=_safe_next(next))


@router.post("/login")
async def login(
    request: Request, username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if not _login_csrf_matches(request.cookies.get(LOGIN_COOKIE), csrf):
        return _login_page(request, status=403, username=username, next=_safe_next(next),
                           error="the sign-in form has expired or did not come from this "
                                 "site; sign in again with this form")
    state = console_state(request)
    address = request.client.host if request.client else "unknown"
    try:
        secret, session = await run_in_threadpool(
            state.sessions.sign_in, username.strip(), password, address)
    except AuthError as exc:
        return _login_page(request, status=exc.http_status, error=str(exc),
                           username=username, next=_safe_next(next))
    response = see_other(_safe_next(next))
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
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


def _login_page(request: Request, *, status: int = 200, **values: Any) -> HTMLResponse:
    """The sign-in form with its CSRF token; a browser's unexpired token is kept, so
    two open sign-in tabs both work."""
    token = request.cookies.get(LOGIN_COOKIE) or ""
    if not _TOKEN_SHAPE.fullmatch(token):
        token = secrets.token_hex(32)
    response = page(request, "login.html", None, status=status, login_csrf=token, **values)
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=LOGIN_CSRF_SECONDS, path=PREFIX, httponly=True,
        samesite="strict",
        secure=_is_tls(request, console_state(request).site.config.tls_cert),
    )
    return response


def _login_csrf_matches(cookie: str | None, sent: str) -> bool:
    return bool(cookie) and bool(sent) and hmac.compare_digest(
        (cookie or "").encode(), sent.encode())


def _safe_next(target: str) -> str:
    """Only a console path: never an open redirect to another site."""
    if target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def _is_tls(request: Request, tls_cert: object) -> bool:
    """Secure cookies when this server speaks TLS or a trusted proxy says the client
    did (uvicorn applies ``X-Forwarded-Proto`` only from ``FORWARDED_ALLOW_IPS``)."""
    return tls_cert is not None or request.url.scheme == "https"
