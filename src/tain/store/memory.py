"""The blob store contract in memory, for unit tests.

Behaves like ``LocalStore`` as far as the contract goes, including verification on
read, so ``corrupt`` and ``corrupt_chunk`` let tests exercise the corruption paths.
``local_path`` is always ``None``: there are no files to link.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from tain.core.digests import blake3_hex, is_digest, sha256_hex
from tain.errors import DigestMismatch, IntegrityError, NotFound
from tain.store.base import AbortOnExit, ImmediateGroup

log = logging.getLogger("tain.store")


class MemoryStore:
    """Blobs and chunks in dicts, behind one lock. ``clock`` stamps staged chunks."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._blobs: dict[str, bytes] = {}
        self._chunks: dict[str, tuple[bytes, float]] = {}

    # -- blobs -------------------------------------------------------------------------

    def new_blob(self) -> MemoryBlobWriter:
        return MemoryBlobWriter(self)

    def blob_group(self) -> ImmediateGroup:
        return ImmediateGroup(self)

    def open(self, sha256: str) -> BinaryIO:
        return io.BytesIO(self._verified(sha256))

    def local_path(self, sha256: str) -> None:
        return None

    def size(self, sha256: str) -> int:
        with self._lock:
            data = self._blobs.get(sha256)
        if data is None:
            raise NotFound(f"no blob {sha256}")
        return len(data)

    def has_blobs(self, shas: Iterable[str]) -> set[str]:
        with self._lock:
            return {sha for sha in set(shas) if sha in self._blobs}

    def delete(self, sha256: str) -> None:
        with self._lock:
            self._blobs.pop(sha256, None)

    def iter_blobs(self) -> Iterator[str]:
        with self._lock:
            names = sorted(self._blobs)
        yield from names

    # -- chunks ------------------------------------------------------------------------

    def put_chunk(self, digest: str, data: bytes) -> None:
        actual = blake3_hex(data)
        if actual != digest:
            raise DigestMismatch(
                f"chunk bytes hash to {actual}, not {digest}", expected=digest, actual=actual
            )
        with self._lock:
            self._chunks[digest] = (bytes(data), self._clock())

    def get_chunk(self, digest: str) -> bytes:
        with self._lock:
            entry = self._chunks.get(digest)
        if entry is None:
            raise NotFound(f"no staged chunk {digest}")
        if blake3_hex(entry[0]) != digest:
            log.error("corrupt staged chunk %s: removed", digest)
            with self._lock:
                self._chunks.pop(digest, None)
            raise IntegrityError(f"staged chunk {digest} is corrupt", hint="upload it again")
        return entry[0]

    def has_chunks(self, digests: Iterable[str]) -> set[str]:
        with self._lock:
            return {d for d in set(digests) if d in self._chunks}

    def prune_chunks(self, older_than: float) -> int:
        with self._lock:
            old = [d for d, (_, staged) in self._chunks.items() if staged < older_than]
            for digest in old:
                del self._chunks[digest]
        return len(old)

    # -- test hooks --------------------------------------------------------------------

    def corrupt(self, sha256: str) -> None:
        """Flip the first stored byte of a blob (append one to an empty blob)."""
        with self._lock:
            if sha256 not in self._blobs:
                raise NotFound(f"no blob {sha256}")
            self._blobs[sha256] = _flip(self._blobs[sha256])

    def corrupt_chunk(self, digest: str) -> None:
        """Flip the first stored byte of a staged chunk."""
        with self._lock:
            if digest not in self._chunks:
                raise NotFound(f"no staged chunk {digest}")
            data, staged = self._chunks[digest]
            self._chunks[digest] = (_flip(data), staged)

    # -- internals ---------------------------------------------------------------------

    def _add(self, sha256: str, data: bytes) -> None:
        """Store a blob; an existing good copy is kept, a corrupt one replaced."""
        with self._lock:
            existing = self._blobs.get(sha256)
        if existing is not None and sha256_hex(existing) == sha256:
            return
        with self._lock:
            self._blobs[sha256] = data

    def _verified(self, sha256: str) -> bytes:
        with self._lock:
            data = self._blobs.get(sha256)
        if data is None or not is_digest(sha256):
            raise NotFound(f"no blob {sha256}")
        if sha256_hex(data) != sha256:
            log.error("corrupt blob %s: its bytes do not hash to its name", sha256)
            raise IntegrityError(f"blob {sha256} is corrupt", sha256=sha256)
        return data


class MemoryBlobWriter(AbortOnExit):
    """Collects a blob's bytes in memory; ``commit`` stores them under their SHA-256."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        self._buf: bytearray | None = bytearray()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        buf = self._live()
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._size += view.nbytes
        buf += view

    def commit(self, expected_sha256: str | None = None) -> str:
        data = bytes(self._live())
        self.abort()
        sha = self._hash.hexdigest()
        if expected_sha256 is not None and expected_sha256 != sha:
            raise DigestMismatch(
                f"blob bytes hash to {sha}, not {expected_sha256}",
                expected=expected_sha256,
                actual=sha,
            )
        self._store._add(sha, data)
        return sha

    def abort(self) -> None:
        self._buf = None

    def _live(self) -> bytearray:
        if self._buf is None:
            raise ValueError("blob writer is closed")
        return self._buf


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:] if data else b"\0"
