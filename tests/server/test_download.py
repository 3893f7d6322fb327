from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from tain.core.ranges import http_date
from tain.errors import IntegrityError, TainError
from tain.server.download import (
    BLOCK_SIZE,
    Segment,
    file_response,
    guess_content_type,
    read_segments,
)

MTIME_NS = 1_700_000_000_123_456_789
MTIME_S = 1_700_000_000
# Over two blocks, no repeating pattern: a wrong offset cannot go unnoticed.
DATA = hashlib.shake_256(b"tain").digest(2 * BLOCK_SIZE + 12345)
SHA = hashlib.sha256(DATA).hexdigest()
ETAG = f'"{SHA}"'


class Files:
    """An opener over a real file that records what it opened (to check closing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened: list[BinaryIO] = []

    def __call__(self) -> BinaryIO:
        file = self.path.open("rb")
        self.opened.append(file)
        return file

    @property
    def all_closed(self) -> bool:
        return all(f.closed for f in self.opened)


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / SHA
    path.write_bytes(DATA)
    return path


@pytest.fixture
def files(blob: Path) -> Files:
    return Files(blob)


class Client:
    """Drives an ASGI app through httpx (starlette's TestClient warns about httpx)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("GET", url, headers)

    def head(self, url: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("HEAD", url, headers)

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tain.test") as c:
                return await c.request(method, url, headers=headers)

        return anyio.run(go)


def make_client(
    opener: Callable[[], BinaryIO],
    *,
    data: bytes = DATA,
    filename: str = "image.iso",
    extra_headers: Mapping[str, str] | None = None,
) -> Client:
    sha = hashlib.sha256(data).hexdigest()

    async def download(request: Request) -> Response:
        return file_response(
            request, opener=opener, size=len(data), sha256=sha, mtime_ns=MTIME_NS,
            filename=filename, extra_headers=extra_headers,
        )

    async def on_tain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TainError)
        return JSONResponse(exc.to_json(), status_code=exc.http_status)

    app = Starlette(
        routes=[Route("/repo/{path:path}", download, methods=["GET"])],
        exception_handlers={TainError: on_tain_error},
    )
    return Client(app)


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    assert content_type.startswith("multipart/byteranges; boundary=")
    boundary = content_type.partition("boundary=")[2].encode()
    end = b"--" + boundary + b"--\r\n"
    assert body.endswith(end)
    chunks = body[: -len(end)].split(b"--" + boundary + b"\r\n")
    assert chunks[0] == b""
    parts = []
    for chunk in chunks[1:]:
        head, _, rest = chunk.partition(b"\r\n\r\n")
        assert rest.endswith(b"\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append((headers, rest[:-2]))
    return parts


def test_full_body_and_headers(files: Files) -> None:
    response = make_client(files).get("/repo/image.iso")
    assert response.status_code == 200
    assert response.content == DATA
    h = response.headers
    assert h["etag"] == ETAG
    assert h["repr-digest"] == "sha-256=:" + base64.b64encode(bytes.fromhex(SHA)).decode() + ":"
    assert h["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert h["accept-ranges"] == "bytes"
    assert h["content-length"] == str(len(DATA))
    assert h["content-type"] == "application/x-iso9660-image"
    assert "cache-control" not in h
    assert "content-range" not in h
    assert len(files.opened) == 1 and files.all_closed


def test_text_type_gets_no_invented_charset(blob: Path) -> None:
    response = make_client(Files(blob), filename="notes.txt").get("/repo/notes.txt")
    assert response.headers["content-type"] == "text/plain"
    response = make_client(Files(blob), filename="README").get("/repo/README")
    assert response.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("a.tar.gz", "application/gzip"),  # the bytes are gzip, not tar
        ("a.xz", "application/x-xz"),
        ("a.html", "text/html"),
        ("a.json", "application/json"),
        ("noext", "application/octet-stream"),
    ],
)
def test_guess_content_type(filename: str, expected: str) -> None:
    assert guess_content_type(filename) == expected


def test_head_sends_headers_only(files: Files) -> None:
    response = make_client(files).head("/repo/image.iso")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["etag"] == ETAG
    assert files.opened == []


def test_head_ignores_range(files: Files) -> None:
    response = make_client(files).head("/repo/image.iso", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert files.opened == []


@pytest.mark.parametrize("inm", [ETAG, f"W/{ETAG}", "*", f'"nope", {ETAG}'])
def test_if_none_match_gives_304(files: Files, inm: str) -> None:
    client = make_client(files, extra_headers={"Cache-Control": "max-age=60"})
    for method in (client.get, client.head):
        response = method("/repo/image.iso", headers={"If-None-Match": inm})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == ETAG
        assert response.headers["cache-control"] == "max-age=60"
        assert "content-length" not in response.headers
    assert files.opened == []


def test_if_none_match_mismatch_sends_200(files: Files) -> None:
    response = make_client(files).get("/repo/x", headers={"If-None-Match": '"other"'})
    assert response.status_code == 200
    assert response.content == DATA


@pytest.mark.parametrize(
    ("since", "status"),
    [(MTIME_S, 304), (MTIME_S + 3600, 304), (MTIME_S - 1, 200)],
)
def test_if_modified_since(files: Files, since: int, status: int) -> None:
    response = make_client(files).get("/repo/x", headers={"If-Modified-Since": http_date(since)})
    assert response.status_code == status


def test_if_none_match_overrides_if_modified_since(files: Files) -> None:
    headers = {"If-None-Match": '"other"', "If-Modified-Since": http_date(MTIME_S)}
    assert make_client(files).get("/repo/x", headers=headers).status_code == 200


def test_invalid_if_modified_since_is_ignored(files: Files) -> None:
    response = make_client(files).get("/repo/x", headers={"If-Modified-Since": "soon"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1000", 1000, 1000),
        (f"bytes={BLOCK_SIZE - 10}-{BLOCK_SIZE * 2 + 10}", BLOCK_SIZE - 10, BLOCK_SIZE * 2 + 10),
        ("bytes=-500", len(DATA) - 500, len(DATA) - 1),
        (f"bytes={len(DATA) - 7}-", len(DATA) - 7, len(DATA) - 1),
        (f"bytes=10-{len(DATA) * 5}", 10, len(DATA) - 1),
    ],
)
def test_single_range(files: Files, header: str, first: int, last: int) -> None:
    response = make_client(files).get("/repo/x", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["content-type"] == "application/x-iso9660-image"
    assert response.headers["etag"] == ETAG
    assert files.all_closed


def test_multiple_ranges(files: Files) -> None:
    spans = [(BLOCK_SIZE * 2, BLOCK_SIZE * 2 + 99), (0, 9), (BLOCK_SIZE - 5, BLOCK_SIZE + 5)]
    header = "bytes=" + ",".join(f"{a}-{b}" for a, b in spans) + ",3-12"  # 3-12 joins 0-9
    response = make_client(files).get("/repo/x", headers={"Range": header})
    assert response.status_code == 206
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(response.content))
    parts = parse_multipart(response.content, response.headers["content-type"])
    expected = [spans[0], (0, 12), spans[2]]
    assert len(parts) == len(expected)
    for (headers, data), (first, last) in zip(parts, expected, strict=True):
        assert headers["Content-Type"] == "application/x-iso9660-image"
        assert headers["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
        assert data == DATA[first : last + 1]
    assert files.all_closed


def test_unsatisfiable_range_gives_416(files: Files) -> None:
    response = make_client(files).get("/repo/x", headers={"Range": f"bytes={len(DATA)}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert response.json()["error"] == "range_not_satisfiable"
    assert files.opened == []


def test_invalid_range_is_ignored(files: Files) -> None:
    for header in ("bytes=9-1", "lines=1-2", "bytes=a-b"):
        response = make_client(files).get("/repo/x", headers={"Range": header})
        assert response.status_code == 200
        assert response.content == DATA


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        (ETAG, 206),
        (f"W/{ETAG}", 200),  # strong comparison only
        ('"stale"', 200),
        (http_date(MTIME_S), 206),
        (http_date(MTIME_S - 1), 200),
        (http_date(MTIME_S + 1), 200),
    ],
)
def test_if_range(files: Files, if_range: str, status: int) -> None:
    headers = {"Range": "bytes=5-9", "If-Range": if_range}
    response = make_client(files).get("/repo/x", headers=headers)
    assert response.status_code == status
    assert response.content == (DATA[5:10] if status == 206 else DATA)


def test_if_range_mismatch_ignores_even_an_unsatisfiable_range(files: Files) -> None:
    headers = {"Range": f"bytes={len(DATA) + 1}-", "If-Range": '"stale"'}
    response = make_client(files).get("/repo/x", headers=headers)
    assert response.status_code == 200
    assert response.content == DATA


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    client = make_client(Files(path), data=b"")
    response = client.get("/repo/empty")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    response = client.get("/repo/empty", headers={"Range": "bytes=0-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"


def test_opener_error_propagates_before_any_byte() -> None:
    def broken() -> BinaryIO:
        raise IntegrityError("blob does not match its digest", sha256=SHA)

    response = make_client(broken).get("/repo/image.iso")
    assert response.status_code == 500
    assert response.json()["error"] == "integrity"
    assert "etag" not in response.headers
    assert DATA[:64] not in response.content


def test_read_segments_refuses_a_short_file() -> None:
    segments: list[Segment] = [b"head", (2, 3), b"tail"]
    assert b"".join(read_segments(io.BytesIO(b"0123456"), segments)) == b"head234tail"
    blocks = read_segments(io.BytesIO(b"0123"), segments)
    assert next(blocks) == b"head"
    with pytest.raises(IntegrityError):
        list(blocks)


def test_short_file_aborts_the_stream() -> None:
    short = io.BytesIO(DATA[:-1])
    with pytest.raises(Exception) as info:  # starlette wraps it: response started
        make_client(lambda: short).get("/repo/image.iso")
    causes = []
    exc: BaseException | None = info.value
    while exc is not None:
        causes.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(c, IntegrityError) for c in causes)
    assert short.closed


def test_extra_headers_cannot_replace_ours(files: Files) -> None:
    extra = {"Cache-Control": "no-cache", "ETag": '"forged"', "content-length": "1"}
    response = make_client(files, extra_headers=extra).get("/repo/x")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"] == ETAG
    assert response.content == DATA


# --- raw ASGI: server extensions and disconnects -------------------------------------


def asgi_scope(
    *, headers: Mapping[str, str] | None = None, extensions: dict[str, Any] | None = None,
    spec_version: str = "2.4",
) -> dict[str, Any]:
    return {
        "type": "http", "method": "GET", "path": "/repo/x", "raw_path": b"/repo/x",
        "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "extensions": extensions or {},
    }


def run_asgi(
    scope: dict[str, Any], files: Files, *, local_path: Path | None = None,
    disconnect: bool = False, failing_send: bool = False,
) -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        if not disconnect:
            await anyio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if failing_send and message["type"] == "http.response.body":
            raise OSError("connection reset")
        messages.append(message)

    async def main() -> None:
        response = file_response(
            Request(scope), opener=files, size=len(DATA), sha256=SHA, mtime_ns=MTIME_NS,
            filename="image.iso", local_path=local_path,
        )
        await response(scope, receive, send)

    anyio.run(main)
    return messages


def test_pathsend_for_a_whole_file(files: Files, blob: Path) -> None:
    scope = asgi_scope(extensions={"http.response.pathsend": {}})
    messages = run_asgi(scope, files, local_path=blob)
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.pathsend"]
    assert messages[1]["path"] == str(blob)
    assert (b"content-length", str(len(DATA)).encode()) in messages[0]["headers"]
    assert len(files.opened) == 1 and files.all_closed  # the opener still vouches first


def test_pathsend_not_used_for_ranges(files: Files, blob: Path) -> None:
    scope = asgi_scope(headers={"Range": "bytes=0-9"}, extensions={"http.response.pathsend": {}})
    messages = run_asgi(scope, files, local_path=blob)
    assert messages[0]["status"] == 206
    assert b"".join(m.get("body", b"") for m in messages[1:]) == DATA[:10]


def test_zerocopysend(files: Files) -> None:
    scope = asgi_scope(
        headers={"Range": "bytes=10-19"}, extensions={"http.response.zerocopysend": {}},
    )
    messages = run_asgi(scope, files)
    assert messages[0]["status"] == 206
    assert [m["type"] for m in messages[1:]] == ["http.response.zerocopysend"]
    sent = messages[1]
    assert (sent["offset"], sent["count"], sent["more_body"]) == (10, 10, False)
    assert messages[1]["file"] is files.opened[0]
    assert files.all_closed


def test_zerocopysend_not_used_for_multipart(files: Files) -> None:
    scope = asgi_scope(
        headers={"Range": "bytes=0-1,5-6"}, extensions={"http.response.zerocopysend": {}},
    )
    messages = run_asgi(scope, files)
    assert {m["type"] for m in messages[1:]} == {"http.response.body"}


def test_file_closed_when_client_disconnects(files: Files) -> None:
    run_asgi(asgi_scope(spec_version="2.3"), files, disconnect=True)
    assert len(files.opened) == 1 and files.all_closed


def test_file_closed_when_send_fails(files: Files) -> None:
    with pytest.raises(ClientDisconnect):
        run_asgi(asgi_scope(), files, failing_send=True)
    assert len(files.opened) == 1 and files.all_closed
