"""The response for one stored file: validators, conditional requests and byte ranges.

Route handlers look the file up and call ``file_response``; everything HTTP-specific
about sending its bytes (RFC 9110: 304, 206, multipart/byteranges, 416, HEAD) is here.
"""

from __future__ import annotations

import mimetypes
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from tain.core.digests import repr_digest_header
from tain.core.ranges import (
    Span,
    etag_matches,
    http_date,
    if_range_matches,
    mtime_seconds,
    not_modified_since,
    parse_range,
)
from tain.errors import IntegrityError, RangeNotSatisfiable

BLOCK_SIZE = 1 << 20
SMALL_BODY = 256 * 1024  # whole files up to this size are sent from memory
ZEROCOPY = "http.response.zerocopysend"
PATHSEND = "http.response.pathsend"

# guess_type reports "foo.tar.gz" as (x-tar, gzip): the bytes sent are the gzip stream.
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}

# Computed here; a caller's extra header of the same name would contradict the body.
_OURS = frozenset({
    "etag", "last-modified", "accept-ranges", "repr-digest", "content-type",
    "content-length", "content-range", "content-encoding", "transfer-encoding",
})

Segment = bytes | tuple[int, int]
"""A piece of a response body: literal bytes, or ``(offset, length)`` of the file."""


def file_response(
    request: Request,
    *,
    opener: Callable[[], BinaryIO],
    size: int,
    sha256: str,
    mtime_ns: int,
    filename: str,
    local_path: Path | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> Response:
    """The response to a GET or HEAD of a file of ``size`` bytes named by ``sha256``.

    ``opener`` is called at most once, and only when a body is sent; whatever it raises
    (IntegrityError, NotFound...) propagates before any byte is sent. The file it returns
    is read in blocks in a worker thread and closed when the response ends, however it
    ends. ``local_path`` (the same bytes on disk) lets a server that supports the ASGI
    path-send extension send the whole file itself. ``extra_headers`` (Cache-Control,
    Content-Disposition...) are added; they cannot replace the headers computed here.
    """
    etag = f'"{sha256}"'
    last_modified = mtime_seconds(mtime_ns)
    base = {k.lower(): v for k, v in (extra_headers or {}).items() if k.lower() not in _OURS}
    base |= {"etag": etag, "last-modified": http_date(last_modified), "accept-ranges": "bytes"}

    if request.method in ("GET", "HEAD") and _not_modified(request, etag, last_modified):
        return Response(status_code=304, headers=base)
    base["repr-digest"] = repr_digest_header(sha256)
    try:
        spans = _requested_spans(request, etag, last_modified, size)
    except RangeNotSatisfiable as exc:
        headers = base | {"content-range": f"bytes */{size}"}
        return JSONResponse(exc.to_json(), status_code=416, headers=headers)

    status, segments, framing = _body_plan(spans, size, guess_content_type(filename))
    headers = base | framing
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    if spans is None and size <= SMALL_BODY:
        return _small_body(opener(), size, status, headers)
    return _FileBody(
        opener(), segments, status_code=status, headers=headers,
        local_path=local_path if spans is None else None,
    )


def _small_body(file: BinaryIO, size: int, status: int, headers: dict[str, str]) -> Response:
    """A small whole file is read at once (this runs in the route's worker thread):
    streaming it block by block through the thread pool costs more than the bytes."""
    with file:
        body = file.read(size + 1)
    if len(body) != size:
        raise IntegrityError(f"stored file is {len(body)} bytes, the catalog says {size}")
    return Response(body, status_code=status, headers=headers)


def guess_content_type(filename: str) -> str:
    """The Content-Type of a file by its name; never a charset the bytes may not have."""
    media_type, encoding = mimetypes.guess_type(filename)
    if encoding is not None:
        return _ENCODING_TYPES.get(encoding, "application/octet-stream")
    return media_type or "application/octet-stream"


def _not_modified(request: Request, etag: str, last_modified: int) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    return not_modified_since(request.headers.get("if-modified-since"), last_modified)


def _requested_spans(
    request: Request, etag: str, last_modified: int, size: int
) -> list[Span] | None:
    """The spans to send, None for the whole file. Range is defined for GET only."""
    header = request.headers.get("range")
    if header is None or request.method != "GET":
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and not if_range_matches(if_range, etag, last_modified):
        return None
    return parse_range(header, size)


def _body_plan(
    spans: list[Span] | None, size: int, content_type: str
) -> tuple[int, list[Segment], dict[str, str]]:
    """Status, body segments and framing headers for the whole file or some spans."""
    if spans is None:
        return 200, [(0, size)], {"content-type": content_type, "content-length": str(size)}
    if len(spans) == 1:
        first, last = spans[0]
        return 206, [(first, last - first + 1)], {
            "content-type": content_type,
            "content-range": f"bytes {first}-{last}/{size}",
            "content-length": str(last - first + 1),
        }
    boundary = secrets.token_hex(16)
    segments = multipart_segments(spans, size, content_type, boundary)
    return 206, segments, {
        "content-type": f"multipart/byteranges; boundary={boundary}",
        "content-length": str(body_length(segments)),
    }


def multipart_segments(
    spans: Sequence[Span], size: int, content_type: str, boundary: str
) -> list[Segment]:
    """The body of a ``multipart/byteranges`` response (RFC 9110 14.6) as segments."""
    segments: list[Segment] = []
    for first, last in spans:
        part_head = (
            f"--{boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
        )
        segments += [part_head.encode("latin-1"), (first, last - first + 1), b"\r\n"]
    segments.append(f"--{boundary}--\r\n".encode("latin-1"))
    return segments


def body_length(segments: Sequence[Segment]) -> int:
    return sum(len(s) if isinstance(s, bytes) else s[1] for s in segments)


def read_segments(file: BinaryIO, segments: Sequence[Segment]) -> Iterator[bytes]:
    """Yield the body in blocks of at most ``BLOCK_SIZE``; seeks only when it must.

    A file shorter than promised raises IntegrityError: the headers are gone already,
    so the server can only abort the response, which tells the client it is incomplete.
    """
    position = 0
    for segment in segments:
        if isinstance(segment, bytes):
            yield segment
            continue
        offset, remaining = segment
        if offset != position:
            file.seek(offset)
        while remaining > 0:
            block = file.read(min(BLOCK_SIZE, remaining))
            if not block:
                raise IntegrityError(
                    f"stored file ended {remaining} bytes early", offset=offset,
                )
            remaining -= len(block)
            yield block
        position = offset + segment[1]


class _FileBody(StreamingResponse):
    """Streams segments of an open file and closes it once the response is over.

    With a server that offers zero-copy send (the open file) or path send (a whole
    file on disk), the server moves the bytes itself.
    """

    def __init__(
        self,
        file: BinaryIO,
        segments: list[Segment],
        *,
        status_code: int,
        headers: Mapping[str, str],
        local_path: Path | None,
    ) -> None:
        super().__init__(read_segments(file, segments), status_code=status_code, headers=headers)
        self.file = file
        self.segments = segments
        self.local_path = local_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            extensions = scope.get("extensions") or {}
            spans = [s for s in self.segments if isinstance(s, tuple)]
            if ZEROCOPY in extensions and len(spans) == len(self.segments) and _has_fileno(
                self.file
            ):
                await self._zerocopy_send(send, spans)
            elif PATHSEND in extensions and self.local_path is not None:
                self.file.close()
                await self._start(send)
                await send({"type": PATHSEND, "path": str(self.local_path)})
            else:
                await super().__call__(scope, receive, send)
        finally:
            self.file.close()

    async def _start(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code,
             "headers": self.raw_headers}
        )

    async def _zerocopy_send(self, send: Send, spans: list[tuple[int, int]]) -> None:
        await self._start(send)
        for i, (offset, count) in enumerate(spans, 1):
            await send(
                {"type": ZEROCOPY, "file": self.file, "offset": offset, "count": count,
                 "more_body": i < len(spans)}
            )


def _has_fileno(file: BinaryIO) -> bool:
    try:
        file.fileno()
    except (OSError, ValueError, AttributeError):
        return False
    return True
