"""A typed, synchronous client for the site's HTTP API (the contract is docs/api.md).

Errors are translated once, in ``_raise_for_error`` and ``_send``: a JSON error body
becomes the tain error class its code names, any other failure becomes the class of its
HTTP status, and an unreachable site becomes ``RemoteError``. Idempotent requests (GET,
HEAD and the push endpoints, which the site makes idempotent) are retried with backoff
on connection errors and 502/503/504.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
import zstandard

from tain import __version__
from tain.core.digests import is_digest, parse_repr_digest
from tain.core.manifest import Change, Entry, change_to_json, entry_from_json
from tain.errors import (
    ERRORS_BY_CODE,
    AuthError,
    Conflict,
    DigestMismatch,
    Forbidden,
    IntegrityError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    RemoteError,
    StorageError,
    TainError,
    UsageError,
)

API = "/api/v1"
CHUNKS_CONTENT_TYPE = "application/x-tain-chunks+zstd"
ZSTD_LEVEL = 3
MISSING_BATCH = 1000
TREE_PAGE = 5000
RETRY_STATUSES = frozenset({502, 503, 504})
DOWNLOAD_BLOCK = 1 << 20
_FRAME_HEADER = 36

_ERRORS_BY_STATUS: dict[int, type[TainError]] = {
    400: InvalidRequest, 401: AuthError, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 416: RangeNotSatisfiable, 422: DigestMismatch, 507: StorageError,
}


@dataclass(frozen=True, slots=True)
class TreePage:
    revision: int
    entries: list[Entry]
    next: str | None


@dataclass(frozen=True, slots=True)
class Missing:
    blobs: list[str]
    chunks: list[str]


@dataclass(frozen=True, slots=True)
class UploadResult:
    stored: int
    bytes: int
    wire_bytes: int


@dataclass(frozen=True, slots=True)
class CommitResult:
    revision: dict[str, Any]
    created: bool

    @property
    def number(self) -> int:
        return int(self.revision["number"])


@dataclass(frozen=True, slots=True)
class DownloadResult:
    sha256: str
    size: int


def encode_chunk_frames(frames: Iterable[tuple[str, bytes | memoryview]]) -> bytes:
    """One zstd stream of ``digest (32 raw bytes) | length (u32 BE) | data`` frames,
    compressed as it is built (no uncompressed copy of the whole request)."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
    parts = []
    for digest, data in frames:
        parts.append(compressor.compress(bytes.fromhex(digest) + len(data).to_bytes(4, "big")))
        parts.append(compressor.compress(data))
    parts.append(compressor.flush())
    return b"".join(parts)


def decode_chunk_frames(body: bytes) -> Iterator[tuple[str, bytes]]:
    """The inverse of ``encode_chunk_frames``; raises InvalidRequest on a torn stream."""
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body))
    while header := _read_exact(reader, _FRAME_HEADER, allow_eof=True):
        length = int.from_bytes(header[32:], "big")
        yield header[:32].hex(), _read_exact(reader, length)


def _read_exact(reader: Any, size: int, *, allow_eof: bool = False) -> bytes:
    data = b""
    while len(data) < size:
        block = reader.read(size - len(data))
        if not block:
            if allow_eof and not data:
                return b""
            raise InvalidRequest("chunk stream ends inside a frame")
        data += block
    return data


def error_from_response(response: httpx.Response) -> TainError:
    """The tain error an HTTP error response stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        cls = ERRORS_BY_CODE.get(body["error"]) or _ERRORS_BY_STATUS.get(
            response.status_code, RemoteError
        )
        err = cls(str(body.get("message") or body["error"]), hint=body.get("hint") or None)
        details = body.get("details")
        err.details = dict(details) if isinstance(details, dict) else {}
        return err
    cls = _ERRORS_BY_STATUS.get(response.status_code, RemoteError)
    text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    request = response.request
    message = f"{request.method} {request.url} failed: HTTP {response.status_code}"
    err = cls(f"{message}: {text}" if text else message)
    err.details = {"status": response.status_code, "tain_error": False}
    return err


class BlobsUnsupported(RemoteError):
    """The site has no ``POST /repos/R/blobs`` (an older version): send chunks instead."""


class SiteClient:
    """One site, one token. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = 60,
        transport: httpx.BaseTransport | None = None,
        retries: int = 2,
        backoff: float = 0.25,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(
                f"site URL {base_url!r} must start with http:// or https://",
                hint="e.g. --site http://127.0.0.1:8080",
            )
        self.base_url = base_url.rstrip("/")
        self._retries = max(0, retries)
        self._backoff = backoff
        headers = {"User-Agent": f"tain/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._has_token = bool(token)
        self.blob_uploads = True
        """False once the site turned out to lack ``POST /blobs``: small files go as chunks."""
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SiteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        stream: bool = False,
        follow_redirects: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request, retrying idempotent ones; return a success response."""
        if "params" in kwargs:
            kwargs["params"] = {k: v for k, v in kwargs["params"].items() if v is not None}
        retry = method in ("GET", "HEAD") if idempotent is None else idempotent
        attempts = 1 + (self._retries if retry else 0)
        for attempt in range(attempts):
            last = attempt + 1 == attempts
            request = self._http.build_request(method, url, **kwargs)
            try:
                response = self._http.send(
                    request, stream=stream, follow_redirects=follow_redirects
                )
            except httpx.TransportError as exc:
                if last:
                    raise self._unreachable(exc) from exc
                self._pause(attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                response.close()
                self._pause(attempt)
                continue
            self._raise_for_error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int) -> None:
        time.sleep(self._backoff * (2**attempt))

    def _unreachable(self, exc: httpx.HTTPError) -> RemoteError:
        reason = str(exc) or type(exc).__name__
        return RemoteError(
            f"cannot reach {self.base_url}: {reason}", hint="is 'tain serve' running there?"
        )

    def _raise_for_error(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            response.read()
        except httpx.HTTPError as exc:
            response.close()
            raise self._unreachable(exc) from exc
        err = error_from_response(response)
        if isinstance(err, AuthError) and not err.hint and not self._has_token:
            err.hint = "pass --token or set TAIN_TOKEN"
        raise err

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self._send(method, url, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RemoteError(f"{method} {url}: the site answered with invalid JSON") from exc

    def _get(self, url: str, **params: Any) -> Any:
        return self._json("GET", url, params=params)

    # -- site, repositories, revisions ---------------------------------------------------

    def site(self) -> dict[str, Any]:
        return dict(self._get(f"{API}/site"))

    def whoami(self) -> dict[str, Any]:
        return dict(self._get(f"{API}/whoami"))

    def list_repos(self) -> list[dict[str, Any]]:
        return _items(self._get(f"{API}/repos"), "repos")

    def create_repo(self, name: str, *, public: bool = False, description: str = "") -> Any:
        body = {"name": name, "public": public, "description": description}
        return self._json("POST", f"{API}/repos", json=body)

    def get_repo(self, repo: str) -> dict[str, Any]:
        return dict(self._get(_repo_api(repo)))

    def update_repo(self, repo: str, changes: Mapping[str, Any]) -> Any:
        return self._json("PATCH", _repo_api(repo), json=dict(changes))

    def delete_repo(self, repo: str) -> None:
        self._send("DELETE", _repo_api(repo))

    def revisions(
        self, repo: str, *, limit: int = 50, before: int | None = None
    ) -> list[dict[str, Any]]:
        body = self._get(f"{_repo_api(repo)}/revisions", limit=limit, before=before)
        return _items(body, "revisions")

    def revision(self, repo: str, number: int) -> dict[str, Any]:
        return dict(self._get(f"{_repo_api(repo)}/revisions/{number}"))

    def tree_page(
        self,
        repo: str,
        *,
        rev: int | None = None,
        prefix: str | None = None,
        after: str | None = None,
        limit: int = TREE_PAGE,
    ) -> TreePage:
        body = self._get(
            f"{_repo_api(repo)}/tree", rev=rev, prefix=prefix, after=after, limit=limit
        )
        entries = [entry_from_json(raw) for raw in body.get("entries", [])]
        return TreePage(_revision_number(body.get("revision")), entries, body.get("next"))

    def iter_tree(
        self, repo: str, *, rev: int | None = None, prefix: str | None = None
    ) -> Iterator[Entry]:
        """Every entry of one revision (the head when ``rev`` is None), page by page."""
        page = self.tree_page(repo, rev=rev, prefix=prefix)
        yield from page.entries
        while page.next is not None:
            page = self.tree_page(repo, rev=page.revision, prefix=prefix, after=page.next)
            yield from page.entries

    def entry(self, repo: str, path: str, *, rev: int | None = None) -> Entry:
        return entry_from_json(self._get(f"{_repo_api(repo)}/entry", path=path, rev=rev))

    def list_dir(self, repo: str, path: str = "", *, rev: int | None = None) -> list[Entry]:
        """The direct children of a directory, from its JSON index."""
        url = _file_url(repo, path).rstrip("/") + "/"
        headers = {"Accept": "application/json"}
        body = self._json("GET", url, params={"rev": rev}, headers=headers)
        return [entry_from_json(raw) for raw in body.get("entries", [])]

    def history(self, repo: str, path: str) -> list[dict[str, Any]]:
        return _items(self._get(f"{_repo_api(repo)}/history", path=path), "versions")

    def diff(
        self, repo: str, from_rev: int, to_rev: int, *, prefix: str | None = None
    ) -> dict[str, Any]:
        url = f"{_repo_api(repo)}/diff"
        return dict(self._get(url, **{"from": from_rev, "to": to_rev, "prefix": prefix}))

    # -- push protocol ------------------------------------------------------------------

    def missing(
        self, repo: str, *, blobs: Sequence[str] = (), chunks: Sequence[str] = ()
    ) -> Missing:
        """Which of ``blobs``/``chunks`` the site lacks (asked ``MISSING_BATCH`` at a time)."""
        url = f"{_repo_api(repo)}/missing"
        lacking: dict[str, list[str]] = {"blobs": [], "chunks": []}
        for kind, digests in (("blobs", blobs), ("chunks", chunks)):
            for start in range(0, len(digests), MISSING_BATCH):
                body = {kind: list(digests[start : start + MISSING_BATCH])}
                answer = self._json("POST", url, json=body, idempotent=True)
                lacking[kind].extend(answer.get(kind, []))
        return Missing(lacking["blobs"], lacking["chunks"])

    def upload_chunks(
        self, repo: str, frames: Iterable[tuple[str, bytes | memoryview]]
    ) -> UploadResult:
        return self.upload_encoded(repo, encode_chunk_frames(frames))

    def upload_blobs(
        self, repo: str, frames: Iterable[tuple[str, bytes | memoryview]]
    ) -> UploadResult:
        """Upload whole small files as (sha256, bytes): stored as blobs at once."""
        return self.upload_encoded(repo, encode_chunk_frames(frames), blobs=True)

    def upload_encoded(self, repo: str, payload: bytes, *, blobs: bool = False) -> UploadResult:
        """Upload frames encoded with ``encode_chunk_frames``: chunks (by BLAKE3) to be
        staged, or with ``blobs`` whole small files (by SHA-256) to be stored."""
        headers = {"Content-Type": CHUNKS_CONTENT_TYPE, "Content-Length": str(len(payload))}
        url = f"{_repo_api(repo)}/{'blobs' if blobs else 'chunks'}"
        content = _ReleasedBody(payload)
        try:
            body = self._json("POST", url, content=content, headers=headers, idempotent=True)
        except TainError as err:
            if blobs and err.details.get("tain_error") is False and \
                    err.details.get("status") in (404, 405):
                self.blob_uploads = False
                raise BlobsUnsupported(f"{self.base_url} cannot store whole files",
                                       hint="upgrade the site; chunks are sent meanwhile") from err
            raise
        finally:
            content.release()
        return UploadResult(int(body.get("stored", 0)), int(body.get("bytes", 0)), len(payload))

    def commit(
        self,
        repo: str,
        changes: Sequence[Change],
        *,
        message: str,
        commit_id: str,
        base_rev: int | None = None,
    ) -> CommitResult:
        body: dict[str, Any] = {
            "changes": [change_to_json(c) for c in changes],
            "message": message,
            "commit_id": commit_id,
        }
        if base_rev is not None:
            body["base_rev"] = base_rev
        url = f"{_repo_api(repo)}/commits"
        answer = self._json("POST", url, json=body, idempotent=True)
        return CommitResult(dict(answer["revision"]), bool(answer.get("created", True)))

    def rollback(
        self, repo: str, to_rev: int, *, path: str | None = None, message: str = ""
    ) -> Any:
        body: dict[str, Any] = {"to_rev": to_rev, "message": message}
        if path is not None:
            body["path"] = path
        return self._json("POST", f"{_repo_api(repo)}/rollback", json=body)

    def apply_retention(self, repo: str) -> dict[str, Any]:
        return dict(self._json("POST", f"{_repo_api(repo)}/retention"))

    def gc(self, *, dry_run: bool = False) -> dict[str, Any]:
        return dict(self._json("POST", f"{API}/gc", json={"dry_run": dry_run}))

    # -- users, tokens, grants, audit ------------------------------------------------------

    def list_users(self) -> list[dict[str, Any]]:
        return _items(self._get(f"{API}/users"), "users")

    def create_user(self, name: str, *, is_admin: bool = False) -> Any:
        return self._json("POST", f"{API}/users", json={"name": name, "is_admin": is_admin})

    def delete_user(self, name: str) -> None:
        self._send("DELETE", f"{API}/users/{quote(name, safe='')}")

    def set_password(self, user: str, password: str | None) -> dict[str, Any]:
        url = f"{API}/users/{quote(user, safe='')}/password"
        return dict(self._json("PUT", url, json={"password": password}))

    def list_tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        return _items(self._get(f"{API}/tokens", user=user), "tokens")

    def create_token(
        self, user: str, *, name: str | None = None, expires_in_days: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"user": user}
        if name is not None:
            body["name"] = name
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return dict(self._json("POST", f"{API}/tokens", json=body))

    def revoke_token(self, token_id: int | str) -> None:
        self._send("DELETE", f"{API}/tokens/{quote(str(token_id), safe='')}")

    def list_grants(
        self, *, user: str | None = None, repo: str | None = None
    ) -> list[dict[str, Any]]:
        return _items(self._get(f"{API}/grants", user=user, repo=repo), "grants")

    def set_grant(self, user: str, repo: str, role: str | None) -> Any:
        body = {"user": user, "repo": repo, "role": role}
        return self._json("PUT", f"{API}/grants", json=body)

    def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: float | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        body = self._get(
            f"{API}/audit", actor=actor, action=action, target=target, since=since,
            limit=limit, after=after,
        )
        return _items(body, "entries")

    def audit_verify(self) -> dict[str, Any]:
        return dict(self._get(f"{API}/audit/verify"))

    # -- agents --------------------------------------------------------------------------

    def agent_heartbeat(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """Report an agent's state (an upsert, so safe to repeat); returns the stored
        record and the repository's ``head``."""
        url = f"{API}/agents/heartbeat"
        return dict(self._json("POST", url, json=dict(report), idempotent=True))

    def list_agents(self, *, repo: str | None = None) -> list[dict[str, Any]]:
        return _items(self._get(f"{API}/agents", repo=repo), "agents")

    def forget_agent(self, agent_id: str) -> None:
        self._send("DELETE", f"{API}/agents/{quote(agent_id, safe='')}")

    # -- files ---------------------------------------------------------------------------

    def download_to(
        self, repo: str, path: str, out: IO[bytes], *, rev: int | None = None
    ) -> DownloadResult:
        """Stream a file into ``out``; IntegrityError (after writing) on a bad digest."""
        url = _file_url(repo, path)
        response = self._send(
            "GET", url, params={"rev": rev}, stream=True, follow_redirects=True
        )
        try:
            expected = _expected_sha256(response, path)
            digest, size = hashlib.sha256(), 0
            for block in response.iter_bytes(DOWNLOAD_BLOCK):
                digest.update(block)
                out.write(block)
                size += len(block)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        finally:
            response.close()
        if digest.hexdigest() != expected:
            raise IntegrityError(
                f"{path}: downloaded bytes have SHA-256 {digest.hexdigest()}, "
                f"the site announced {expected}",
                hint="try again; if it persists, run a site integrity check",
            )
        return DownloadResult(expected, size)

    def download(
        self, repo: str, path: str, dest: Path, *, rev: int | None = None
    ) -> DownloadResult:
        """Download into a temporary file beside ``dest``, verify, then rename over it."""
        try:
            fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        except OSError as exc:
            raise StorageError(f"cannot write beside {dest}: {exc.strerror}") from exc
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                result = self.download_to(repo, path, out, rev=rev)
            tmp.chmod(dest.stat().st_mode & 0o7777 if dest.exists() else 0o644)
            tmp.replace(dest)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
            raise
        return result

    def put_file(
        self, repo: str, path: str, local: Path, *, message: str | None = None
    ) -> dict[str, Any]:
        """Upload one whole file; the site checks the SHA-256 sent with it."""
        info = local.stat()
        with local.open("rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
            f.seek(0)
            headers = {
                "X-Tain-SHA256": sha,
                "X-Tain-Mode": f"{info.st_mode & 0o7777:04o}",
                "X-Tain-Mtime-Ns": str(info.st_mtime_ns),
                "X-Tain-Commit-Id": str(uuid.uuid4()),
            }
            url = _file_url(repo, path)
            body = self._json(
                "PUT", url, params={"message": message}, content=f, headers=headers
            )
        return dict(body)

    def delete_path(self, repo: str, path: str, *, message: str | None = None) -> Any:
        return self._json("DELETE", _file_url(repo, path), params={"message": message})

    # -- site status ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Repositories, store usage per data dir, last scrub and backup, schedules."""
        return dict(self._get(f"{API}/status"))

    # -- statistics and alerts -------------------------------------------------------------

    def stats(self, kind: str, **params: Any) -> dict[str, Any]:
        """``kind``: downloads, popular or pushes; params: days, repo, site, since, until,
        limit (popular)."""
        return dict(self._get(f"{API}/stats/{quote(kind, safe='')}", **params))

    def alerts(self, *, limit: int = 100) -> dict[str, Any]:
        return dict(self._get(f"{API}/alerts", limit=limit))

    def check_alerts(self) -> dict[str, Any]:
        return dict(self._json("POST", f"{API}/alerts/check"))

    def test_alerts(self) -> dict[str, Any]:
        return dict(self._json("POST", f"{API}/alerts/test"))
    def sites(self) -> list[dict[str, Any]]:
        """The sites this site checks, with their health (``GET /api/v1/sites``)."""
        return _items(self._get(f"{API}/sites"), "sites")


class _ReleasedBody:
    """A request body that can be sent again (retries) until ``release``: httpx keeps
    each request in a reference cycle with its response, so a plain ``bytes`` body
    would stay in memory until the garbage collector happens to run."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __iter__(self) -> Iterator[bytes]:
        if self._data is None:
            raise RemoteError("a request body was sent after it was released")
        yield self._data

    def release(self) -> None:
        self._data = None


def _repo_api(repo: str) -> str:
    return f"{API}/repos/{quote(repo, safe='')}"


def _file_url(repo: str, path: str) -> str:
    return "/" + quote(repo, safe="") + "/" + quote(path, safe="/")


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    """A list answer, whether the site sends a bare list or ``{key: [...]}``."""
    if isinstance(body, dict):
        body = body.get(key, [])
    if not isinstance(body, list):
        raise RemoteError(f"the site sent an unexpected answer (wanted a list of {key})")
    return body


def _revision_number(value: Any) -> int:
    """A revision given as a number or as a revision object."""
    if isinstance(value, dict):
        value = value.get("number", 0)
    return int(value or 0)


def _expected_sha256(response: httpx.Response, path: str) -> str:
    for hop in response.history:  # a site that redirects to presigned S3 names the digest
        announced = str(hop.headers.get("X-Tain-SHA256", "")).lower()
        if is_digest(announced):
            return announced
    etag = str(response.headers.get("ETag", "")).removeprefix("W/").strip('"')
    if is_digest(etag):
        return etag
    from_repr = parse_repr_digest(response.headers.get("Repr-Digest", ""))
    if from_repr:
        return from_repr
    if response.headers.get("Content-Type", "").startswith("text/html"):
        raise UsageError(f"{path} is a directory, not a file", hint="list it with 'tain ls'")
    raise RemoteError(f"{path}: the site sent no SHA-256 to verify the download against")
