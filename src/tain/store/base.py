"""The blob store contract.

A blob store keeps whole file versions ("blobs") named by the SHA-256 of their bytes,
and a staging area of uploaded transfer chunks named by their BLAKE3. Every backend
(``LocalStore``, ``MemoryStore``, later S3) passes ``tests/contracts/test_store_contract.py``.

Blobs
    ``new_blob()`` returns a ``BlobWriter``. Bytes written to it are hashed on the way.
    ``commit(expected)`` makes the blob durable and visible under its SHA-256 and
    returns that digest. If ``expected`` is given and differs, nothing becomes visible
    and ``DigestMismatch`` is raised. Committing a blob that already exists is a no-op
    (content addressing makes writes idempotent). ``abort()`` (or leaving the ``with``
    block with an exception, or without committing) discards the bytes. A crash at any
    moment leaves either no blob or the whole blob under its name, never a partial one.

    ``open(sha)`` returns a readable binary file positioned at 0. It raises ``NotFound``
    for an unknown blob and ``IntegrityError`` if the stored bytes do not hash to ``sha``
    (checked before the first byte is returned; backends may remember a successful
    check while the stored object is unchanged). A reader never gets wrong bytes.

    ``local_path(sha)`` gives a filesystem path of a verified copy when the backend
    keeps blobs as local files (for hard links and sendfile), else ``None``.

    ``delete(sha)`` removes every copy; deleting a missing blob is a no-op.
    ``has_blobs(shas)`` returns the subset present. ``iter_blobs()`` yields every
    blob name (for gc and scrub). ``size(sha)`` raises ``NotFound`` when absent.

Groups
    ``blob_group()`` returns a ``BlobGroup`` for writing many blobs at once: its
    ``new_blob()`` writers check the digest on ``commit`` as usual, and every blob so
    committed is durable and visible under its name at the latest when ``finish()``
    returns (a backend may publish each on its own commit, or all together, as the
    local store does to share fsyncs). Leaving the ``with`` block without ``finish``
    discards what is still pending; no blob is ever partly visible.
    ``put(sha, data)`` commits the bytes ``data`` as blob ``sha`` (``DigestMismatch``
    when they hash to something else): the same as a writer, cheaper for small files.
    ``adopt_chunk(sha, digest, size)`` commits blob ``sha`` from the staged chunk
    ``digest`` when that chunk is all of it and intact (both digests checked), without
    copying where the backend can; False (and nothing done) otherwise.

Chunks (staging)
    ``put_chunk(digest, data)`` stores an uploaded chunk after checking that
    ``blake3(data) == digest`` (``DigestMismatch`` otherwise); idempotent.
    ``get_chunk(digest)`` returns the bytes (``NotFound`` when absent) and verifies them.
    ``has_chunks(digests)`` returns the subset staged. ``prune_chunks(older_than)``
    deletes chunks staged before the given UNIX time and returns how many it deleted.

Errors
    A full disk or unwritable directory raises ``StorageError`` with a one-line reason;
    nothing half-written stays visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self


class BlobWriter(Protocol):
    def write(self, data: bytes | memoryview) -> None: ...

    def commit(self, expected_sha256: str | None = None) -> str: ...

    def abort(self) -> None: ...

    @property
    def size(self) -> int: ...

    def __enter__(self) -> BlobWriter: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class AbortOnExit:
    """A writer's ``with`` block ends by aborting: a no-op after ``commit``, otherwise
    (an exception, a forgotten commit) the bytes are discarded."""

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class BlobGroup(Protocol):
    local_files: bool
    """True when ``put`` is a few calls on a local file system (best made by one
    thread); False when each waits on a round trip (S3: best made in parallel)."""

    def new_blob(self) -> BlobWriter: ...

    def put(self, sha256: str, data: bytes) -> None: ...

    def adopt_chunk(self, sha256: str, digest: str, size: int) -> bool: ...

    def finish(self) -> None: ...

    def __enter__(self) -> BlobGroup: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ImmediateGroup:
    """A ``BlobGroup`` for backends whose writers publish each blob on ``commit``."""

    local_files = False

    def __init__(self, store: BlobStore) -> None:
        self._store = store

    def new_blob(self) -> BlobWriter:
        return self._store.new_blob()

    def put(self, sha256: str, data: bytes) -> None:
        with self._store.new_blob() as writer:
            writer.write(data)
            writer.commit(expected_sha256=sha256)

    def adopt_chunk(self, sha256: str, digest: str, size: int) -> bool:
        return False

    def finish(self) -> None:
        return None

    def __enter__(self) -> ImmediateGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class BlobStore(Protocol):
    def new_blob(self) -> BlobWriter: ...

    def blob_group(self) -> BlobGroup: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def local_path(self, sha256: str) -> Path | None: ...

    def size(self, sha256: str) -> int: ...

    def has_blobs(self, shas: Iterable[str]) -> set[str]: ...

    def delete(self, sha256: str) -> None: ...

    def iter_blobs(self) -> Iterator[str]: ...

    def put_chunk(self, digest: str, data: bytes) -> None: ...

    def get_chunk(self, digest: str) -> bytes: ...

    def has_chunks(self, digests: Iterable[str]) -> set[str]: ...

    def prune_chunks(self, older_than: float) -> int: ...
