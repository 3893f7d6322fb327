"""Mirror-style file URLs: ``/{repo}/{path}`` to download, list, PUT and DELETE."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import anyio.from_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tain.catalog.models import Role
from tain.core.digests import is_digest, parse_repr_digest
from tain.core.manifest import Change, Entry, Kind
from tain.core.paths import name_of, normalize_path, parent_of
from tain.errors import InvalidRequest, NotFound
from tain.server.deps import get_principal, get_site
from tain.server.download import PATHSEND, file_response, guess_content_type
from tain.server.listing import render_index_html, render_index_json, render_sha256sums
from tain.server.observe import FILE_MARK
from tain.server.routes.common import clean_path, repo_for
from tain.service import pushes
from tain.service.ingest import store_upload
from tain.service.site import Site
from tain.store.s3 import S3Store

router = APIRouter(tags=["files"])
SUMS = "SHA256SUMS"


@router.head("/{repo}/{path:path}", include_in_schema=False)
@router.get("/{repo}/{path:path}")
def download(repo: str, path: str, request: Request) -> Response:
    """A file, a directory index (HTML or JSON) or a directory's SHA256SUMS."""
    site = get_site(request)
    found = repo_for(site, get_principal(request), repo, Role.READ)
    rev = _rev_param(request)
    clean = clean_path(path)
    entry = site.reads.lookup(found, clean, rev) if clean else None
    if entry is None and clean and name_of(clean) == SUMS:
        return _sums(site, repo, parent_of(clean), rev)
    if clean and entry is None:
        raise NotFound(f"{clean} is not in {repo}" + (f" at revision {rev}" if rev else ""))
    if entry is None or entry.kind is Kind.DIR:
        return _index(site, request, repo, clean, rev, path)
    if entry.kind is Kind.SYMLINK:
        return _follow(request, repo, clean, entry)
    return _file(site, request, entry)


def _rev_param(request: Request) -> int | None:
    raw = request.query_params.get("rev")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidRequest(f"rev must be a revision number, not {raw!r}")
    return int(raw)


def _file(site: Site, request: Request, entry: Entry) -> Response:
    sha = entry.sha256 or ""
    filename = name_of(entry.path)
    request.scope[FILE_MARK] = (entry.path, entry.size)  # counted by ObserveMiddleware
    s3 = _presigning_store(site, request)
    if s3 is not None:
        url = s3.presigned_url(
            sha, s3.config.presign_ttl_seconds, filename,
            content_type=guess_content_type(filename),
        )
        return RedirectResponse(
            url, status_code=302, headers={"Cache-Control": "no-store", "X-Tain-SHA256": sha}
        )
    return file_response(
        request, opener=lambda: site.store.open(sha), size=entry.size, sha256=sha,
        mtime_ns=entry.mtime_ns, filename=filename,
        local_path=site.store.local_path(sha) if _can_pathsend(request) else None,
        extra_headers={"X-Content-Type-Options": "nosniff",
                       "Content-Security-Policy": "sandbox"},
    )


def _can_pathsend(request: Request) -> bool:
    return PATHSEND in (request.scope.get("extensions") or {})


def _presigning_store(site: Site, request: Request) -> S3Store | None:
    """The S3 store to send this request to (``presign_downloads``), if any: only a
    plain, unconditional GET of the whole file goes. HEAD, Range and conditional
    requests are answered here, so ETag (the SHA-256), Repr-Digest, 304 and 206 keep
    their meaning, and a HEAD costs no S3 request."""
    store = site.store
    if not isinstance(store, S3Store) or not store.config.presign_downloads:
        return None
    if request.method != "GET" or any(name in request.headers for name in _STAY_HEADERS):
        return None
    return store


_STAY_HEADERS = (
    "range", "if-range", "if-match", "if-none-match", "if-modified-since",
    "if-unmodified-since",
)


def _index(
    site: Site, request: Request, repo: str, directory: str, rev: int | None, raw: str
) -> Response:
    if raw and not raw.endswith("/"):
        suffix = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/{repo}/{quote(directory)}/{suffix}", status_code=301)
    shown = site.catalog.resolve_rev(repo, rev)[1]
    children = site.catalog.list_dir(repo, directory, shown) if shown else []
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(render_index_json(repo, directory, shown, children))
    suffix = f"?rev={rev}" if rev is not None else ""
    return HTMLResponse(render_index_html(repo, directory, shown, children, suffix))


def _sums(site: Site, repo: str, directory: str, rev: int | None) -> Response:
    files = [e for e in site.catalog.iter_tree(repo, rev, directory) if e.kind is Kind.FILE]
    return PlainTextResponse(render_sha256sums(files, directory))


def _follow(request: Request, repo: str, path: str, entry: Entry) -> Response:
    parts = parent_of(path).split("/") if parent_of(path) else []
    for segment in (entry.target or "").split("/"):
        if segment == "..":
            parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    suffix = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/{repo}/{quote('/'.join(parts))}{suffix}", status_code=302)


@router.put("/{repo}/{path:path}", status_code=201)
async def upload(repo: str, path: str, request: Request) -> dict[str, Any]:
    """Upload one whole file (curl -T); optional digest header checked before commit."""
    site = get_site(request)
    who = await run_in_threadpool(get_principal, request)
    await run_in_threadpool(repo_for, site, who, repo, Role.WRITE)
    clean = normalize_path(path)
    expected = _expected_digest(request)
    mode, mtime_ns = _mode_mtime(request, site)
    chunks = request.stream()

    def body() -> Iterator[bytes]:
        while True:
            try:
                part = anyio.from_thread.run(chunks.__anext__)
            except StopAsyncIteration:
                return
            if part:
                yield part

    sha, size = await run_in_threadpool(
        store_upload, site.catalog, site.store, body(), expected=expected,
        max_bytes=site.config.limits.max_put_bytes,
    )
    entry = Entry(clean, Kind.FILE, mode, mtime_ns, sha, size)
    result = await run_in_threadpool(
        lambda: pushes.commit(
            site, repo, [Change("put", clean, entry)], author=who.name,
            message=request.query_params.get("message") or f"put {clean}",
            commit_id=request.headers.get("x-tain-commit-id") or str(uuid.uuid4()),
        )
    )
    return {"revision": result.revision.to_json(), "created": result.created,
            "sha256": sha, "size": size}


@router.delete("/{repo}/{path:path}")
def delete(repo: str, path: str, request: Request) -> dict[str, Any]:
    site = get_site(request)
    who = get_principal(request)
    repo_for(site, who, repo, Role.WRITE)
    clean = normalize_path(path)
    if site.catalog.lookup(repo, clean) is None:
        raise NotFound(f"{clean} is not in {repo}")
    result = pushes.commit(
        site, repo, [Change("delete", clean)], author=who.name,
        message=request.query_params.get("message") or f"delete {clean}",
    )
    return {"revision": result.revision.to_json(), "created": result.created}


def _expected_digest(request: Request) -> str | None:
    plain = request.headers.get("x-tain-sha256")
    if plain is not None:
        if not is_digest(plain.lower()):
            raise InvalidRequest("X-Tain-SHA256 must be 64 hex digits")
        return plain.lower()
    for header in ("repr-digest", "content-digest"):
        value = request.headers.get(header)
        if value is not None:
            found = parse_repr_digest(value)
            if found is None:
                raise InvalidRequest(f"{header} has no valid sha-256 value")
            return found
    return None


def _mode_mtime(request: Request, site: Site) -> tuple[int, int]:
    raw_mode = request.headers.get("x-tain-mode", "644")
    raw_mtime = request.headers.get("x-tain-mtime-ns")
    try:
        mode = int(raw_mode, 8)
        mtime = int(raw_mtime) if raw_mtime else int(site.clock() * 1e9)
    except ValueError as exc:
        raise InvalidRequest("X-Tain-Mode must be octal and X-Tain-Mtime-Ns an integer") from exc
    if not 0 <= mode <= 0o7777:
        raise InvalidRequest("X-Tain-Mode is out of range")
    return mode, mtime
