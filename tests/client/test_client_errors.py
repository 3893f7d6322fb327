"""Error mapping of the site client (through httpx's MockTransport) and chunk frames."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import zstandard

from tain.client import (
    CHUNKS_CONTENT_TYPE,
    SiteClient,
    decode_chunk_frames,
    encode_chunk_frames,
)
from tain.core.digests import blake3_hex
from tain.errors import (
    ERRORS_BY_CODE,
    AuthError,
    Forbidden,
    IntegrityError,
    InvalidRequest,
    MissingData,
    NotFound,
    RemoteError,
    TainError,
    UsageError,
)

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, *, token: str | None = "t0k", retries: int = 2) -> SiteClient:
    transport = httpx.MockTransport(handler)
    return SiteClient("http://site.test", token, transport=transport, retries=retries, backoff=0)


def error_body(code: str, **extra: object) -> Handler:
    cls = ERRORS_BY_CODE[code]

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": code, "message": f"{code} happened", **extra}
        return httpx.Response(cls.http_status, json=body)

    return handler


@pytest.mark.parametrize("code", sorted(ERRORS_BY_CODE))
def test_json_error_body_becomes_the_class_its_code_names(code: str) -> None:
    with client_for(error_body(code)) as client, pytest.raises(TainError) as caught:
        client.get_repo("docs")
    assert type(caught.value) is ERRORS_BY_CODE[code]
    assert caught.value.message == f"{code} happened"


def test_hint_and_details_are_kept() -> None:
    handler = error_body(
        "missing_data", hint="upload them", details={"chunks": ["ab" * 32], "missing": []}
    )
    with client_for(handler) as client, pytest.raises(MissingData) as caught:
        client.commit("docs", [], message="m", commit_id="c1", base_rev=3)
    assert caught.value.hint == "upload them"
    assert caught.value.details == {"chunks": ["ab" * 32], "missing": []}
    assert caught.value.exit_code == 6


def test_unknown_code_falls_back_to_the_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "brand_new", "message": "no"})

    with client_for(handler) as client, pytest.raises(Forbidden, match="no"):
        client.whoami()


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, InvalidRequest), (404, NotFound), (401, AuthError), (500, RemoteError)],
)
def test_error_without_json_body_maps_by_status(status: int, cls: type[TainError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<html>proxy says no</html>")

    with client_for(handler) as client, pytest.raises(cls) as caught:
        client.site()
    assert str(status) in caught.value.message
    assert type(caught.value) is cls


def test_missing_token_gets_a_hint() -> None:
    handler = error_body("unauthorized")
    with client_for(handler, token=None) as client, pytest.raises(AuthError) as caught:
        client.whoami()
    assert caught.value.hint == "pass --token or set TAIN_TOKEN"


def test_token_is_sent_as_bearer() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json={"user": "ann", "is_admin": False, "grants": []})

    with client_for(handler, token="s3cret") as client:
        client.whoami()
    assert seen == ["Bearer s3cret"]


def refuse(calls: list[str]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ConnectError("Connection refused", request=request)

    return handler


def test_connection_error_becomes_remote_error_with_hint() -> None:
    calls: list[str] = []
    with client_for(refuse(calls)) as client, pytest.raises(RemoteError) as caught:
        client.list_repos()
    assert caught.value.message.startswith("cannot reach http://site.test: ")
    assert "Connection refused" in caught.value.message
    assert caught.value.hint == "is 'tain serve' running there?"
    assert caught.value.exit_code == 8
    assert calls == ["GET", "GET", "GET"]


def test_timeout_becomes_remote_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with client_for(handler, retries=0) as client, pytest.raises(RemoteError, match="cannot reach"):
        client.site()


def test_non_idempotent_request_is_not_retried() -> None:
    calls: list[str] = []
    with client_for(refuse(calls)) as client, pytest.raises(RemoteError):
        client.create_repo("docs")
    assert calls == ["POST"]


def test_push_endpoints_are_retried() -> None:
    calls: list[str] = []
    with client_for(refuse(calls)) as client, pytest.raises(RemoteError):
        client.missing("docs", blobs=["ab" * 32])
    assert calls == ["POST", "POST", "POST"]


def test_gateway_errors_are_retried_until_success() -> None:
    answers = iter([httpx.Response(503), httpx.Response(502), httpx.Response(200, json={})])
    with client_for(lambda request: next(answers)) as client:
        assert client.site() == {}


def test_gateway_error_that_persists_is_reported() -> None:
    handler: Handler = lambda request: httpx.Response(504)  # noqa: E731
    with client_for(handler) as client, pytest.raises(RemoteError, match="504"):
        client.site()


def test_invalid_site_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="http"):
        SiteClient("127.0.0.1:8080")


def test_download_with_wrong_digest_raises_and_leaves_no_file(tmp_path: Path) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"payload", headers={"ETag": f'"{wrong}"'})

    dest = tmp_path / "out.bin"
    with client_for(handler) as client, pytest.raises(IntegrityError):
        client.download("docs", "a/out.bin", dest)
    assert list(tmp_path.iterdir()) == []


def frames_of(*payloads: bytes) -> list[tuple[str, bytes]]:
    return [(blake3_hex(p), p) for p in payloads]


def test_chunk_frames_round_trip() -> None:
    frames = frames_of(b"one", b"", b"x" * 300_000, bytes(range(256)))
    assert list(decode_chunk_frames(encode_chunk_frames(frames))) == frames


def test_chunk_frame_layout_is_digest_length_data_in_one_zstd_stream() -> None:
    (digest, data), = frames_of(b"hello")
    body = encode_chunk_frames([(digest, data)])
    raw = zstandard.ZstdDecompressor().stream_reader(body).read()
    assert raw == bytes.fromhex(digest) + (5).to_bytes(4, "big") + b"hello"


def test_torn_chunk_stream_is_rejected() -> None:
    (digest, data), = frames_of(b"hello")
    raw = bytes.fromhex(digest) + (50).to_bytes(4, "big") + data
    with pytest.raises(InvalidRequest):
        list(decode_chunk_frames(zstandard.ZstdCompressor().compress(raw)))


def test_upload_sends_the_chunk_content_type() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"stored": 1, "bytes": 5})

    with client_for(handler) as client:
        result = client.upload_chunks("docs", frames_of(b"hello"))
    assert seen[0].headers["Content-Type"] == CHUNKS_CONTENT_TYPE
    assert result.wire_bytes == len(seen[0].content)
    assert list(decode_chunk_frames(seen[0].content)) == frames_of(b"hello")
