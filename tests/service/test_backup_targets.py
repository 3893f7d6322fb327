"""The backup target contract (backup_targets.py), one suite for a directory and for an
S3 prefix on a real endpoint (moto's server on loopback): atomic puts that move the
file, keys listed in byte order, names, reads, deletes, the lock, and S3's errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.errors import Conflict, NotFound, StorageError, UsageError
from tain.service.backup_targets import (
    ENDPOINT_ENV,
    BackupTarget,
    DirectoryTarget,
    blob_key,
    open_target,
)
from tests.conftest import free_port
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoServer


def s3_env(endpoint: str) -> dict[str, str]:
    """The environment that points backups at ``endpoint`` with the test credentials."""
    return {ENDPOINT_ENV: endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}


@pytest.fixture(params=["directory", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackupTarget]:
    if request.param == "directory":
        yield DirectoryTarget(tmp_path / "dest")
        return
    moto: MotoServer = request.getfixturevalue("moto")
    bucket: str = request.getfixturevalue("s3_bucket")
    opened = open_target(f"s3://{bucket}/backups", s3_env(moto.endpoint),
                         lock_dir=tmp_path / "locks")
    yield opened
    opened.close()


def put(target: BackupTarget, key: str, data: bytes, sha256: str | None = None) -> Path:
    with target.staging() as staging:
        local = staging / "file"
        local.write_bytes(data)
        target.put_file(local, key, sha256=sha256)
        assert not local.exists()  # moved, not copied
    assert not staging.exists()
    return staging


def read(target: BackupTarget, key: str) -> bytes:
    with target.open(key) as fh:
        return fh.read()


def test_puts_lists_reads_and_deletes(target: BackupTarget) -> None:
    assert list(target.objects()) == [] and target.names() == []
    for key, data in [("a/x", b"1"), ("a-b", b"22"), ("a/y/z", b""), ("b.txt", b"4444")]:
        put(target, key, data)
    put(target, "a/x", b"replaced")
    target.sync()
    assert list(target.objects()) == [("a-b", 2), ("a/x", 8), ("a/y/z", 0), ("b.txt", 4)]
    assert list(target.objects("a/")) == [("a/x", 8), ("a/y/z", 0)]
    assert list(target.objects("zzz/")) == []
    assert target.names() == ["a", "a-b", "b.txt"]
    assert read(target, "a/x") == b"replaced" and read(target, "a/y/z") == b""
    assert target.exists("a/y/z") and not target.exists("a/y") and not target.exists("c")
    with pytest.raises(NotFound):
        target.open("a/missing")
    local = target.local_path("b.txt")
    assert local is None or local.read_bytes() == b"4444"
    assert target.url("a/x").startswith(target.location) and target.url("a/x").endswith("a/x")

    target.delete(["a/x", "a/y/z", "never/there"])
    assert list(target.objects()) == [("a-b", 2), ("b.txt", 4)]
    assert target.names() == ["a-b", "b.txt"]
    with pytest.raises(NotFound):
        target.open("a/x")


def test_large_objects_are_read_back_whole(target: BackupTarget) -> None:
    data = hashlib.sha256(b"seed").digest() * 70_000  # 2.2 MB: several reads
    sha = hashlib.sha256(data).hexdigest()
    put(target, blob_key(sha), data, sha256=sha)
    assert list(target.objects("blobs/")) == [(blob_key(sha), len(data))]
    with target.open(blob_key(sha)) as fh:
        chunks = iter(lambda: fh.read(100_000), b"")
        assert hashlib.sha256(b"".join(chunks)).hexdigest() == sha


def test_one_lock_holder_at_a_time(target: BackupTarget) -> None:
    held = pytest.raises(Conflict, match="another backup or prune")
    with target.lock(), held, target.lock():
        pass
    with target.lock():  # released
        pass


def test_s3_puts_keep_the_sha_as_metadata(moto: MotoServer, s3_bucket: str,
                                          tmp_path: Path) -> None:
    target = open_target(f"s3://{s3_bucket}/p/q/", s3_env(moto.endpoint))
    try:
        assert target.location == f"s3://{s3_bucket}/p/q"
        sha = hashlib.sha256(b"blob").hexdigest()
        put(target, blob_key(sha), b"blob", sha256=sha)
        head = moto.admin.head_object(Bucket=s3_bucket, Key=f"p/q/{blob_key(sha)}")
        assert head["Metadata"] == {"tain-sha256": sha}
    finally:
        target.close()


def test_s3_failures_are_one_line_storage_errors(moto: MotoServer, s3_bucket: str) -> None:
    down = open_target("s3://bucket/p", s3_env(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(StorageError, match="cannot reach S3 endpoint") as caught:
            down.names()
        assert "\n" not in str(caught.value) and "TAIN_BACKUP_S3_ENDPOINT_URL" in str(
            caught.value)
    finally:
        down.close()
    missing = open_target("s3://no-such-bucket/p", s3_env(moto.endpoint))
    try:
        with pytest.raises(StorageError, match="does not exist"):
            list(missing.objects())
    finally:
        missing.close()
    with pytest.raises(UsageError, match="names no bucket"):
        open_target("s3://", s3_env(moto.endpoint))
    with pytest.raises(UsageError, match="not an http"):
        open_target(f"s3://{s3_bucket}", {ENDPOINT_ENV: "127.0.0.1:9000"})
    with pytest.raises(UsageError, match="only for s3://"):
        open_target("/some/dir", {}, endpoint_url=moto.endpoint)
