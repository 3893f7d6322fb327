"""The push protocol: which blobs/chunks are missing, chunk upload, commit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from tain.catalog.models import Role
from tain.core.digests import is_digest
from tain.core.manifest import change_from_json
from tain.errors import InvalidRequest, PayloadTooLarge
from tain.server.deps import PrincipalDep, SiteDep
from tain.server.routes.common import repo_for
from tain.service import pushes

router = APIRouter(prefix="/api/v1/repos/{repo}", tags=["push"])
MAX_ASK = 100_000


class MissingBody(BaseModel):
    blobs: list[str] = Field(default_factory=list)
    chunks: list[str] = Field(default_factory=list)


class CommitBody(BaseModel):
    changes: list[dict[str, Any]]
    message: str = ""
    commit_id: str | None = Field(default=None, max_length=64)
    base_rev: int | None = None


@router.post("/missing")
def missing(repo: str, body: MissingBody, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    repo_for(site, who, repo, Role.WRITE)
    if len(body.blobs) + len(body.chunks) > MAX_ASK:
        raise PayloadTooLarge(f"ask about at most {MAX_ASK} digests per request")
    for digest in (*body.blobs, *body.chunks):
        if not is_digest(digest):
            raise InvalidRequest(f"{digest[:80]!r} is not a 64-hex-digit digest")
    blobs, chunks = pushes.find_missing(site, body.blobs, body.chunks)
    return {"blobs": blobs, "chunks": chunks}


@router.post("/chunks")
async def upload_chunks(
    repo: str, request: Request, site: SiteDep, who: PrincipalDep
) -> dict[str, Any]:
    await run_in_threadpool(repo_for, site, who, repo, Role.WRITE)
    body = await _read_limited(request, site.config.limits.max_upload_request_bytes)
    stored, size = await run_in_threadpool(pushes.receive_chunks, site, body)
    return {"stored": stored, "bytes": size}


@router.post("/blobs")
async def upload_blobs(
    repo: str, request: Request, site: SiteDep, who: PrincipalDep
) -> dict[str, Any]:
    """Whole small files as ``sha256 | length | bytes`` frames (zstd, like chunks): each
    is verified and stored durably before the answer, so a commit needs no chunks for it."""
    await run_in_threadpool(repo_for, site, who, repo, Role.WRITE)
    body = await _read_limited(request, site.config.limits.max_upload_request_bytes)
    stored, size = await run_in_threadpool(pushes.receive_blobs, site, body)
    return {"stored": stored, "bytes": size}


@router.post("/commits", status_code=201)
def commit(repo: str, body: CommitBody, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    repo_for(site, who, repo, Role.WRITE)
    if not isinstance(body.changes, list):
        raise InvalidRequest("changes must be a list")
    changes = [change_from_json(raw) for raw in body.changes]
    result = pushes.commit(
        site, repo, changes, author=who.name, message=body.message,
        commit_id=body.commit_id, base_rev=body.base_rev,
    )
    return {"revision": result.revision.to_json(), "created": result.created}


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds {limit}")
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        parts.append(part)
    return b"".join(parts)
