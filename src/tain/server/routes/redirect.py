"""``GET /dl/{repo}/{path}``: the redirector. A 302 to the best site that holds this
version of the file, ``?mirrorlist`` for the ranked list (HTML, or JSON with
``Accept: application/json`` or ``&format=json``), ``?metalink`` (or ``Accept:
application/metalink4+xml``) for a Metalink listing every usable site."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tain.catalog.models import Repo, Role
from tain.core.manifest import Kind
from tain.core.metalink import METALINK_TYPE
from tain.core.paths import normalize_path, parent_of
from tain.core.selection import Ranked
from tain.errors import NotFound
from tain.mirror.redirector import Redirector
from tain.server.deps import get_principal, get_site
from tain.server.mirrorlist import file_url, metalink, mirrorlist_html, mirrorlist_json
from tain.server.routes.common import repo_for
from tain.service.auth import ANONYMOUS, require_role
from tain.service.reads import NotCached

router = APIRouter(tags=["redirector"])
MAX_LINKS = 8  # Link: rel=duplicate headers on a redirect


@router.head("/dl/{repo}/{path:path}", include_in_schema=False)
@router.get("/dl/{repo}/{path:path}")
async def redirect(repo: str, path: str, request: Request) -> Response:
    """Answered on the event loop when everything it needs is in memory (an anonymous
    client, the cached repository row, version and health snapshot: the common case),
    else in a worker thread, since catalog reads block."""
    try:
        return _answer(request, repo, path, block=False)
    except NotCached:
        return await run_in_threadpool(_answer, request, repo, path, block=True)


def _answer(request: Request, repo: str, path: str, *, block: bool) -> Response:
    network: Redirector = request.app.state.network
    found = _readable_repo(request, repo, block=block)
    clean = normalize_path(path)
    version = network.version(found, clean, block=block)
    if version is None:
        raise NotFound(f"{clean} is not in {repo}")
    entry = version.entry
    if entry.kind is Kind.DIR:
        raise NotFound(f"{clean} is a directory in {repo}",
                       hint=f"the redirector serves files; browse /{repo}/{clean}/")
    if entry.kind is Kind.SYMLINK:
        return RedirectResponse(f"/dl/{quote(repo)}/{quote(_target(clean, entry.target))}",
                                status_code=302)
    peer = request.client.host if request.client else ""
    region = network.client_region(peer, request.headers.getlist("x-forwarded-for"))
    wanted = _wanted(request)
    ranked = network.rank(repo, clean, version.rev_from, region, count=wanted == "redirect",
                          block=block)
    if wanted == "metalink":
        return Response(metalink(repo, version, ranked, network.clock()),
                        media_type=METALINK_TYPE, headers=_no_store())
    if wanted in ("json", "html"):
        loads = {r.site.name: r.site.load for r in ranked}
        body = mirrorlist_json(repo, version, ranked, region, loads)
        if wanted == "json":
            return JSONResponse(body, headers=_no_store())
        return HTMLResponse(mirrorlist_html(body), headers=_no_store())
    best = ranked[0].site
    network.sent(best.name)
    return RedirectResponse(file_url(best.url, repo, clean), status_code=302,
                            headers=_redirect_headers(repo, clean, entry.sha256 or "", ranked))


def _readable_repo(request: Request, name: str, *, block: bool) -> Repo:
    """``repo_for(..., READ)``; without blocking only for an anonymous client (a token
    needs catalog reads) and a cached repository row."""
    site = get_site(request)
    if block:
        return repo_for(site, get_principal(request), name, Role.READ)
    if request.headers.get("authorization"):
        raise NotCached("token")
    found = site.reads.repo(name, block=False)
    require_role(site.catalog, ANONYMOUS, found, Role.READ)  # no catalog read: anonymous
    request.state.principal = ANONYMOUS
    return found


def _wanted(request: Request) -> str:
    params, accept = request.query_params, request.headers.get("accept", "")
    if "metalink" in params or METALINK_TYPE in accept:
        return "metalink"
    if "mirrorlist" in params:
        json_asked = params.get("format") == "json" or "application/json" in accept
        return "json" if json_asked else "html"
    return "redirect"


def _no_store() -> dict[str, str]:
    return {"Cache-Control": "no-store", "Vary": "Accept"}


def _redirect_headers(repo: str, path: str, sha256: str, ranked: list[Ranked]) -> dict[str, str]:
    """RFC 6249 (as mirrorbits sends them): the other sites as ``Link: rel=duplicate``
    with their priority and region, and the file's digest, so a client can verify the
    bytes and fall back without asking again."""
    links = []
    for priority, item in enumerate(ranked[1 : 1 + MAX_LINKS], start=2):
        geo = f"; geo={item.site.region}" if item.site.region else ""
        links.append(f"<{file_url(item.site.url, repo, path)}>; rel=duplicate; "
                     f"pri={priority}{geo}")
    headers: dict[str, Any] = {**_no_store(), "X-Tain-SHA256": sha256}
    if sha256:
        b64 = base64.b64encode(bytes.fromhex(sha256)).decode()
        headers["Digest"] = f"SHA-256={b64}"
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def _target(path: str, target: str | None) -> str:
    parts = parent_of(path).split("/") if parent_of(path) else []
    for segment in (target or "").split("/"):
        if segment == "..":
            if parts:
                parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    return "/".join(parts)
