"""S3Store beyond the shared contract: multipart uploads, error translation, presigned
URLs and its spool files, against a real S3 endpoint (moto's server on loopback)."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tain.config import S3Config
from tain.core.digests import blake3_hex, sha256_hex
from tain.errors import DigestMismatch, IntegrityError, NotFound, StorageError
from tain.store.factory import open_store
from tain.store.s3 import S3Store
from tests.contracts.test_store_contract import Backend, s3_backend
from tests.s3 import MotoServer, moto_server

MIB = 1024 * 1024


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture
def s3(moto: MotoServer, s3_bucket: str, spool: Path) -> Iterator[Backend]:
    with s3_backend(moto, s3_bucket, spool) as backend:
        yield backend


def put(store: S3Store, data: bytes) -> str:
    with store.new_blob() as writer:
        writer.write(data)
        return writer.commit()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_large_blob_goes_up_in_parts_and_comes_back_whole(
    moto: MotoServer, s3_bucket: str, spool: Path
) -> None:
    data = random.Random(5).randbytes(12 * MIB + 77)
    store = S3Store(moto.config(s3_bucket), spool_dir=spool,
                    multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    try:
        with store.new_blob() as writer:
            for start in range(0, len(data), MIB):
                writer.write(data[start : start + MIB])
            assert [p.name[:12] for p in spool.iterdir()] == ["tain-s3-put-"]
            sha = writer.commit(sha256_hex(data))
        head = moto.admin.head_object(Bucket=s3_bucket, Key=f"blobs/{sha[:2]}/{sha}")
        assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
        assert head["Metadata"] == {"tain-sha256": sha}
        assert store.size(sha) == len(data)
        with store.open(sha) as f:
            assert f.read() == data
    finally:
        store.close()
    assert list(spool.iterdir()) == []


def test_commit_of_a_blob_tain_already_stored_uploads_nothing(
    s3: Backend, moto: MotoServer, s3_bucket: str
) -> None:
    store = s3.store
    assert isinstance(store, S3Store)
    sha = put(store, b"stored once")
    key = f"mirror/site-a/blobs/{sha[:2]}/{sha}"
    # The same bytes and metadata, marked: an upload would replace the marker.
    moto.admin.put_object(Bucket=s3_bucket, Key=key, Body=b"stored once",
                          Metadata={"tain-sha256": sha}, ContentType="text/x-marker")
    assert put(store, b"stored once") == sha
    assert moto.admin.head_object(Bucket=s3_bucket, Key=key)["ContentType"] == "text/x-marker"
    # An object tain did not write (no metadata) is replaced by the committed bytes.
    moto.admin.put_object(Bucket=s3_bucket, Key=key, Body=b"stored once")
    assert put(store, b"stored once") == sha
    assert moto.admin.head_object(Bucket=s3_bucket, Key=key)["Metadata"] == {"tain-sha256": sha}


def test_no_spool_files_are_left_behind(s3: Backend, spool: Path) -> None:
    store = s3.store
    assert isinstance(store, S3Store) and store.spool_dir == spool
    good = put(store, b"good bytes" * 1000)
    bad = put(store, b"bad bytes" * 1000)
    s3.corrupt_blob(bad)
    with store.open(good) as f:
        assert list(spool.iterdir()) == []  # the read copy has no name
        assert f.read(4) == b"good"
    with pytest.raises(IntegrityError):
        store.open(bad)
    with pytest.raises(NotFound):
        store.open(sha256_hex(b"never stored"))
    writer = store.new_blob()
    writer.write(b"aborted")
    writer.abort()
    with pytest.raises(RuntimeError), store.new_blob() as writer:
        writer.write(b"interrupted")
        raise RuntimeError("client went away")
    with store.new_blob() as writer:
        writer.write(b"mismatch")
        with pytest.raises(DigestMismatch):
            writer.commit(sha256_hex(b"something else"))
    assert list(spool.iterdir()) == []


def test_presigned_url_serves_the_blob_under_its_name(s3: Backend) -> None:
    store = s3.store
    assert isinstance(store, S3Store)
    data = b"presigned bytes"
    sha = put(store, data)
    url = store.presigned_url(sha, 60, "r\u00e9sum\u00e9 \"v1\".txt", content_type="text/plain")
    answer = httpx.get(url)
    assert answer.status_code == 200
    assert answer.content == data
    assert answer.headers["content-type"] == "text/plain"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="r_sum_ _v1_.txt"')
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v1%22.txt" in disposition
    with pytest.raises(NotFound):
        store.presigned_url("../etc/passwd", 60)


def test_unreachable_endpoint_is_a_one_line_storage_error(spool: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    config = S3Config(bucket="nowhere", endpoint_url=endpoint, access_key_id="k",
                      secret_access_key="s")
    store = S3Store(config, spool_dir=spool)
    try:
        sha = sha256_hex(b"x")
        for attempt in (lambda: store.open(sha), lambda: store.size(sha),
                        lambda: put(store, b"x"), lambda: store.put_chunk(blake3_hex(b"x"), b"x")):
            with pytest.raises(StorageError) as info:
                attempt()
            assert str(info.value).startswith(f"cannot reach S3 endpoint {endpoint}")
            assert "\n" not in str(info.value)
    finally:
        store.close()
    assert list(spool.iterdir()) == []


def test_wrong_credentials_are_a_storage_error_with_a_hint(
    tmp_path: Path, spool: Path
) -> None:
    # A server of its own that checks credentials (the session's accepts any).
    with moto_server(tmp_path / "moto-auth.log", {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as auth:
        store = S3Store(auth.config("some-bucket", access_key_id="wrong", secret_access_key="x"),
                        spool_dir=spool)
        try:
            for attempt in (lambda: store.open(sha256_hex(b"x")), lambda: put(store, b"x"),
                            lambda: store.has_chunks([blake3_hex(b"x")])):
                with pytest.raises(StorageError) as info:
                    attempt()
                message = str(info.value)
                assert "S3 refused access to bucket 'some-bucket'" in message
                assert "access_key_id" in message and "\n" not in message
        finally:
            store.close()
    assert list(spool.iterdir()) == []


def test_missing_bucket_is_a_storage_error(moto: MotoServer, spool: Path) -> None:
    store = S3Store(moto.config("no-such-bucket-here"), spool_dir=spool)
    try:
        with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
            put(store, b"nowhere to go")  # the upload itself is refused
        with pytest.raises(StorageError, match="does not exist"):
            store.put_chunk(blake3_hex(b"c"), b"c")
        with pytest.raises(StorageError, match="does not exist"):
            list(store.iter_blobs())
    finally:
        store.close()


def test_prefixes_keep_stores_in_one_bucket_apart(
    moto: MotoServer, s3_bucket: str, spool: Path
) -> None:
    a = S3Store(moto.config(s3_bucket, prefix="a"), spool_dir=spool)
    b = S3Store(moto.config(s3_bucket, prefix="a/b"), spool_dir=spool)
    try:
        sha = put(a, b"only in a")
        b.put_chunk(blake3_hex(b"chunk of b"), b"chunk of b")
        assert list(a.iter_blobs()) == [sha]
        assert list(b.iter_blobs()) == []
        assert b.has_blobs([sha]) == set()
        assert a.has_chunks([blake3_hex(b"chunk of b")]) == set()
        assert a.prune_chunks(float("inf")) == 0
        assert b.prune_chunks(float("inf")) == 1
    finally:
        a.close()
        b.close()


def test_factory_opens_the_configured_store(moto: MotoServer, s3_bucket: str,
                                            tmp_path: Path) -> None:
    from tain.config import StoreConfig
    from tain.store.local import LocalStore

    local = open_store(StoreConfig(data_dirs=(tmp_path / "blobs",)))
    assert isinstance(local, LocalStore)
    s3 = open_store(StoreConfig(data_dirs=(tmp_path / "blobs",), kind="s3",
                                s3=moto.config(s3_bucket)))
    try:
        assert isinstance(s3, S3Store)
        assert list(s3.iter_blobs()) == []
    finally:
        s3.close()
