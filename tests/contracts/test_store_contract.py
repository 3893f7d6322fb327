"""The one blob store contract (``tain.store.base``), run against every backend:
local disks, memory, and S3 (a real endpoint on loopback: moto's server)."""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tain.core.digests import EMPTY_SHA256, blake3_hex, sha256_hex
from tain.errors import DigestMismatch, IntegrityError, NotFound
from tain.store.base import BlobStore
from tain.store.local import LocalStore
from tain.store.memory import MemoryStore
from tain.store.s3 import S3Store
from tests.s3 import MotoServer

MISSING = sha256_hex(b"never stored")


@dataclass
class Backend:
    store: BlobStore
    corrupt_blob: Callable[[str], None]
    corrupt_chunk: Callable[[str], None]


def flip_first_byte(path: Path) -> None:
    """Damage a stored file in place, as a failing disk would."""
    mode = path.stat().st_mode & 0o777
    path.chmod(0o644)
    with open(path, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]) if first else b"\0")
    # File timestamps are coarse (one clock tick): make sure this version differs from
    # one the store may have verified moments ago, as it would on a real disk.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    path.chmod(mode)


def local_backend(dirs: list[Path], copies: int) -> Backend:
    store = LocalStore(dirs, copies=copies)

    def corrupt_blob(sha: str) -> None:
        paths = [p for d in dirs for p in d.glob(f"blobs/*/{sha}")]
        assert paths
        for path in paths:
            flip_first_byte(path)

    def corrupt_chunk(digest: str) -> None:
        paths = [p for d in dirs for p in d.glob(f"chunks/*/{digest}")]
        assert paths
        for path in paths:
            flip_first_byte(path)

    return Backend(store, corrupt_blob, corrupt_chunk)


@contextlib.contextmanager
def s3_backend(moto: MotoServer, bucket: str, spool: Path) -> Iterator[Backend]:
    """S3Store on a real S3 endpoint; corruption overwrites an object behind its back."""
    spool.mkdir(exist_ok=True)
    config = moto.config(bucket, prefix="mirror/site-a")
    store = S3Store(config, spool_dir=spool)
    raw = moto.admin

    def overwrite_flipped(key: str) -> None:
        body = raw.get_object(Bucket=bucket, Key=key)["Body"]
        with contextlib.closing(body):
            data = body.read()
        flipped = bytes([data[0] ^ 0xFF]) + data[1:] if data else b"\0"
        raw.put_object(Bucket=bucket, Key=key, Body=flipped)

    try:
        yield Backend(
            store,
            lambda sha: overwrite_flipped(f"mirror/site-a/blobs/{sha[:2]}/{sha}"),
            lambda digest: overwrite_flipped(f"mirror/site-a/chunks/{digest[:2]}/{digest}"),
        )
    finally:
        store.close()
    assert list(spool.iterdir()) == [], "the S3 store left spool files behind"


@pytest.fixture(params=["local-1-dir", "local-3-dirs-2-copies", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local-1-dir":
        yield local_backend([tmp_path / "d0"], copies=1)
    elif request.param == "local-3-dirs-2-copies":
        yield local_backend([tmp_path / f"d{i}" for i in range(3)], copies=2)
    elif request.param == "memory":
        memory = MemoryStore()
        yield Backend(memory, memory.corrupt, memory.corrupt_chunk)
    else:
        moto = request.getfixturevalue("moto")
        bucket = request.getfixturevalue("s3_bucket")
        with s3_backend(moto, bucket, tmp_path / "spool") as s3:
            yield s3


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.store


def put(store: BlobStore, data: bytes) -> str:
    with store.new_blob() as writer:
        writer.write(data)
        return writer.commit()


def read(store: BlobStore, sha: str) -> bytes:
    with store.open(sha) as f:
        return f.read()


def assert_absent(store: BlobStore, sha: str) -> None:
    assert store.has_blobs([sha]) == set()
    assert sha not in set(store.iter_blobs())
    with pytest.raises(NotFound):
        store.open(sha)
    with pytest.raises(NotFound):
        store.size(sha)


# -- blobs ---------------------------------------------------------------------------


def test_streamed_multi_mib_roundtrip(store: BlobStore) -> None:
    data = random.Random(7).randbytes(9 * 1024 * 1024 + 123)
    step = 100_003
    with store.new_blob() as writer:
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            writer.write(memoryview(piece) if start % 2 else piece)
        assert writer.size == len(data)
        sha = writer.commit()
    assert sha == sha256_hex(data)
    assert read(store, sha) == data
    assert store.size(sha) == len(data)
    assert store.has_blobs([sha]) == {sha}
    path = store.local_path(sha)
    assert path is None or path.read_bytes() == data


def test_open_is_positioned_at_zero_and_seekable(store: BlobStore) -> None:
    sha = put(store, b"0123456789")
    with store.open(sha) as f:
        assert f.read(3) == b"012"
        f.seek(5)
        assert f.read() == b"56789"


def test_commit_of_existing_blob_is_a_noop(store: BlobStore) -> None:
    data = b"same bytes twice"
    first = put(store, data)
    second = put(store, data)
    assert first == second == sha256_hex(data)
    assert list(store.iter_blobs()) == [first]
    assert read(store, first) == data


def test_commit_with_matching_expected_digest(store: BlobStore) -> None:
    data = b"expected"
    with store.new_blob() as writer:
        writer.write(data)
        assert writer.commit(sha256_hex(data)) == sha256_hex(data)
    assert read(store, sha256_hex(data)) == data


def test_expected_digest_mismatch_leaves_nothing(store: BlobStore) -> None:
    data = b"actual bytes"
    with store.new_blob() as writer:
        writer.write(data)
        with pytest.raises(DigestMismatch):
            writer.commit(sha256_hex(b"other bytes"))
    assert_absent(store, sha256_hex(data))
    assert_absent(store, sha256_hex(b"other bytes"))
    assert list(store.iter_blobs()) == []


def test_abort_leaves_nothing(store: BlobStore) -> None:
    writer = store.new_blob()
    writer.write(b"x" * 5000)
    writer.abort()
    writer.abort()
    assert_absent(store, sha256_hex(b"x" * 5000))


def test_exception_in_with_block_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(RuntimeError), store.new_blob() as writer:
        writer.write(b"half a blob")
        raise RuntimeError("client went away")
    assert_absent(store, sha256_hex(b"half a blob"))


def test_leaving_with_block_without_commit_leaves_nothing(store: BlobStore) -> None:
    with store.new_blob() as writer:
        writer.write(b"never committed")
    assert_absent(store, sha256_hex(b"never committed"))
    assert list(store.iter_blobs()) == []


def test_writer_is_closed_after_commit(store: BlobStore) -> None:
    with store.new_blob() as writer:
        writer.write(b"abc")
        writer.commit()
        with pytest.raises(ValueError):
            writer.write(b"more")
    assert read(store, sha256_hex(b"abc")) == b"abc"


def test_empty_blob(store: BlobStore) -> None:
    with store.new_blob() as writer:
        assert writer.size == 0
        sha = writer.commit()
    assert sha == EMPTY_SHA256
    assert read(store, sha) == b""
    assert store.size(sha) == 0
    assert store.has_blobs([sha]) == {sha}


def test_has_blobs_returns_the_present_subset(store: BlobStore) -> None:
    a = put(store, b"a")
    b = put(store, b"b")
    assert store.has_blobs([a, b, MISSING, "not-a-digest", a]) == {a, b}
    assert store.has_blobs([]) == set()


def test_delete(store: BlobStore) -> None:
    keep = put(store, b"keep")
    gone = put(store, b"gone")
    store.delete(gone)
    assert_absent(store, gone)
    assert read(store, keep) == b"keep"
    store.delete(gone)
    store.delete(MISSING)


def test_delete_then_put_again(store: BlobStore) -> None:
    sha = put(store, b"back again")
    store.delete(sha)
    assert put(store, b"back again") == sha
    assert read(store, sha) == b"back again"


def test_iter_blobs_lists_every_blob_once(store: BlobStore) -> None:
    shas = {put(store, f"blob {i}".encode()) for i in range(25)}
    listed = list(store.iter_blobs())
    assert sorted(listed) == sorted(shas)


def test_unknown_blob_is_not_found(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        store.size(MISSING)
    with pytest.raises(NotFound):
        store.open(MISSING)
    with pytest.raises(NotFound):
        store.open("../../etc/passwd")


def test_unknown_blob_has_no_local_path(store: BlobStore) -> None:
    try:
        path = store.local_path(MISSING)
    except NotFound:
        return
    assert path is None


def test_corrupt_blob_is_never_served(backend: Backend) -> None:
    store = backend.store
    data = b"precious bytes " * 1000
    sha = put(store, data)
    assert read(store, sha) == data  # a verified read that the store may remember
    backend.corrupt_blob(sha)
    with pytest.raises(IntegrityError) as info:
        store.open(sha)
    assert not isinstance(info.value, DigestMismatch)


def test_corrupt_blob_has_no_local_path(backend: Backend) -> None:
    store = backend.store
    sha = put(store, b"linked bytes")
    backend.corrupt_blob(sha)
    try:
        path = store.local_path(sha)
    except IntegrityError:
        return
    assert path is None


def test_corrupt_empty_blob_is_detected(backend: Backend) -> None:
    sha = put(backend.store, b"")
    backend.corrupt_blob(sha)
    with pytest.raises(IntegrityError):
        backend.store.open(sha)


def test_commit_after_corruption_serves_good_bytes(backend: Backend) -> None:
    sha = put(backend.store, b"heal me")
    backend.corrupt_blob(sha)
    assert put(backend.store, b"heal me") == sha
    assert read(backend.store, sha) == b"heal me"


# -- chunks --------------------------------------------------------------------------


def test_chunk_put_get_has(store: BlobStore) -> None:
    data = random.Random(3).randbytes(300_000)
    digest = blake3_hex(data)
    assert store.has_chunks([digest]) == set()
    store.put_chunk(digest, data)
    store.put_chunk(digest, data)
    assert store.get_chunk(digest) == data
    other = blake3_hex(b"other")
    assert store.has_chunks([digest, other, "nonsense"]) == {digest}


def test_chunks_are_not_blobs(store: BlobStore) -> None:
    store.put_chunk(blake3_hex(b"chunk"), b"chunk")
    assert list(store.iter_blobs()) == []


def test_bad_chunk_digest_is_rejected(store: BlobStore) -> None:
    wrong = blake3_hex(b"what the client claimed")
    with pytest.raises(DigestMismatch):
        store.put_chunk(wrong, b"what the client sent")
    with pytest.raises(DigestMismatch):
        store.put_chunk("../../escape", b"what the client sent")
    assert store.has_chunks([wrong, blake3_hex(b"what the client sent")]) == set()


def test_missing_chunk_is_not_found(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        store.get_chunk(blake3_hex(b"never staged"))
    with pytest.raises(NotFound):
        store.get_chunk("../../etc/passwd")


def test_corrupt_chunk_is_never_served(backend: Backend) -> None:
    data = b"chunk bytes" * 100
    digest = blake3_hex(data)
    backend.store.put_chunk(digest, data)
    backend.corrupt_chunk(digest)
    with pytest.raises(IntegrityError):
        backend.store.get_chunk(digest)


def test_prune_chunks_by_staging_time(store: BlobStore) -> None:
    digests = [blake3_hex(bytes([i]) * 10) for i in range(3)]
    for i, digest in enumerate(digests):
        store.put_chunk(digest, bytes([i]) * 10)
    assert store.prune_chunks(time.time() - 3600) == 0
    assert store.has_chunks(digests) == set(digests)
    assert store.prune_chunks(time.time() + 3600) == 3
    assert store.has_chunks(digests) == set()
    assert store.prune_chunks(time.time() + 3600) == 0


# -- groups --------------------------------------------------------------------------


def test_group_makes_every_committed_blob_visible_by_finish(store: BlobStore) -> None:
    datas = [f"grouped blob {i}".encode() * (i + 1) for i in range(5)]
    with store.blob_group() as group:
        shas = []
        for data in datas:
            with group.new_blob() as writer:
                writer.write(data)
                shas.append(writer.commit(expected_sha256=sha256_hex(data)))
        group.finish()
    assert shas == [sha256_hex(d) for d in datas]
    assert store.has_blobs(shas) == set(shas)
    assert [read(store, sha) for sha in shas] == datas


def test_group_digest_mismatch_leaves_that_blob_out(store: BlobStore) -> None:
    with store.blob_group() as group:
        with group.new_blob() as writer:
            writer.write(b"good")
            good = writer.commit()
        with group.new_blob() as writer, pytest.raises(DigestMismatch):
            writer.write(b"bad")
            writer.commit(expected_sha256=MISSING)
        group.finish()
    assert read(store, good) == b"good"
    assert_absent(store, MISSING)
    assert_absent(store, sha256_hex(b"bad"))


def test_group_left_without_finish_leaves_no_partial_blob(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024)
    with pytest.raises(RuntimeError), store.blob_group() as group:
        with group.new_blob() as writer:
            writer.write(data)
            writer.commit()
        raise RuntimeError("the commit failed")
    sha = sha256_hex(data)
    if store.has_blobs([sha]):  # a backend may publish on commit: then it is whole
        assert read(store, sha) == data


def test_group_adopts_an_intact_staged_chunk_as_a_whole_blob(store: BlobStore) -> None:
    data = b"one small file, one chunk"
    digest, sha = blake3_hex(data), sha256_hex(data)
    store.put_chunk(digest, data)
    with store.blob_group() as group:
        adopted = group.adopt_chunk(sha, digest, len(data))
        if not adopted:  # not every backend can: then the caller copies the bytes
            with group.new_blob() as writer:
                writer.write(store.get_chunk(digest))
                writer.commit(expected_sha256=sha)
        group.finish()
    assert read(store, sha) == data
    assert store.get_chunk(digest) == data  # still staged for other commits


def test_group_put_stores_checked_bytes(store: BlobStore) -> None:
    good, other = b"a small file sent whole", b"bytes that are not it"
    with store.blob_group() as group:
        with pytest.raises(DigestMismatch):
            group.put(sha256_hex(other), good)
        group.put(sha256_hex(good), good)
        group.finish()
    assert read(store, sha256_hex(good)) == good
    assert_absent(store, sha256_hex(other))


def test_group_does_not_adopt_a_chunk_that_is_not_the_blob(backend: Backend) -> None:
    store = backend.store
    data = b"staged bytes"
    digest = blake3_hex(data)
    store.put_chunk(digest, data)
    with store.blob_group() as group:
        assert not group.adopt_chunk(sha256_hex(b"other bytes"), digest, len(data))
        assert not group.adopt_chunk(sha256_hex(data), digest, len(data) + 1)
        assert not group.adopt_chunk(sha256_hex(data), blake3_hex(b"never staged"), 4)
        backend.corrupt_chunk(digest)
        assert not group.adopt_chunk(sha256_hex(data), digest, len(data))
        group.finish()
    assert_absent(store, sha256_hex(data))
    assert_absent(store, sha256_hex(b"other bytes"))
