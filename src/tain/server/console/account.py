"""My tokens: every signed-in user lists, creates and revokes their own API tokens,
under the API's rule (users manage their own tokens; only a site admin manages
another user's, on the users page). The catalog audits each change with the viewer
as actor, as the API does."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from tain.errors import NotFound, UsageError
from tain.server.console.access import expiry_days
from tain.server.console.render import ConsoleRoute, page, see_other
from tain.server.console.urls import PREFIX
from tain.server.console.viewer import PosterDep, ViewerDep
from tain.service.auth import new_token

router = APIRouter(route_class=ConsoleRoute)
MY_TOKENS = f"{PREFIX}/account/tokens"
MAX_NAME = 128


@router.get("/account/tokens")
def my_tokens(request: Request, viewer: ViewerDep) -> Response:
    tokens = viewer.state.site.catalog.list_tokens(viewer.name)
    return page(request, "my_tokens.html", viewer, tokens=tokens)


@router.post("/account/tokens")
def create_my_token(
    request: Request, viewer: PosterDep, name: Annotated[str, Form()] = "console",
    expires_days: Annotated[str, Form()] = "",
) -> Response:
    name = name.strip() or "console"
    if len(name) > MAX_NAME:
        raise UsageError(f"a token name has at most {MAX_NAME} characters")
    site = viewer.state.site
    days = expiry_days(expires_days)
    secret, digest = new_token()
    token = site.catalog.create_token(
        viewer.name, name=name, token_hash=digest,
        expires_at=site.clock() + days * 86400 if days else None, actor=viewer.name)
    # rendered, not redirected: the secret is shown on this one response only
    return page(request, "token_created.html", viewer, token=token, secret=secret,
                back=MY_TOKENS, back_title="Back to my tokens")


@router.post("/account/tokens/{token_id}/revoke")
def revoke_my_token(token_id: int, viewer: PosterDep) -> Response:
    """Only the viewer's own tokens; another user's is reported as missing, so token
    ids of others do not leak (admins revoke those on the users page)."""
    catalog = viewer.state.site.catalog
    if token_id not in {t.id for t in catalog.list_tokens(viewer.name)}:
        raise NotFound(f"you have no token {token_id}")
    token = catalog.revoke_token(token_id, actor=viewer.name)
    return see_other(f"{MY_TOKENS}?{urlencode({'notice': f'revoked token {token.id}'})}")
