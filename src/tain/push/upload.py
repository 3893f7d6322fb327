"""Chunking files and uploading the chunks the site lacks, never torn content.

A chunk list is computed in one pass that also hashes the file, and kept only when the
file's stamp did not move during the pass. Chunk bytes are re-read by offset when sent
and checked against their BLAKE3 and the file's stamp; a mismatch raises
``FileChanged`` so the pusher chunks that file again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tain.client import SiteClient
from tain.core.chunking import ChunkRef, iter_file_chunks
from tain.core.digests import blake3_hex
from tain.push.cache import FileStamp
from tain.push.progress import ProgressSink
from tain.push.scan import HASH_ATTEMPTS, FileChanged

UPLOAD_BATCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileChunks:
    """One snapshot of a file: its digest, stamp, mode and chunks."""

    path: str
    location: Path
    stamp: FileStamp
    mode: int
    sha256: str
    chunks: tuple[ChunkRef, ...]

    def chunk_pairs(self) -> tuple[tuple[str, int], ...]:
        return tuple((c.digest, c.length) for c in self.chunks)


def chunk_file(path: str, location: Path, *, attempts: int = HASH_ATTEMPTS) -> FileChunks:
    """Chunk and hash a file in one pass; retry while it changes under us."""
    for _ in range(attempts):
        before = location.lstat()
        refs, sha = [], hashlib.sha256()
        for ref, data in iter_file_chunks(location):
            refs.append(ref)
            sha.update(data)
        after = location.lstat()
        if FileStamp.of(before) == FileStamp.of(after):
            stamp = FileStamp.of(after)
            mode = after.st_mode & 0o7777
            return FileChunks(path, location, stamp, mode, sha.hexdigest(), tuple(refs))
    raise FileChanged(path)


class ChunkLocator:
    """Where to read each known chunk: the files whose chunk lists name it."""

    def __init__(self) -> None:
        self._where: dict[str, list[tuple[FileChunks, ChunkRef]]] = {}

    def add(self, chunks: FileChunks) -> None:
        for ref in chunks.chunks:
            self._where.setdefault(ref.digest, []).append((chunks, ref))

    def forget(self, path: str) -> None:
        """Drop every place inside the file at repository path ``path``."""
        for digest in list(self._where):
            places = [p for p in self._where[digest] if p[0].path != path]
            if places:
                self._where[digest] = places
            else:
                del self._where[digest]

    def knows(self, digest: str) -> bool:
        return digest in self._where

    def length(self, digest: str) -> int:
        return self._where[digest][0][1].length

    def read_order(self, digest: str) -> tuple[str, int]:
        chunks, ref = self._where[digest][0]
        return str(chunks.location), ref.offset

    def read(self, digest: str) -> bytes:
        """The chunk's bytes, re-read from its file; FileChanged if they are not the same."""
        chunks, ref = self._where[digest][0]
        try:
            with chunks.location.open("rb") as f:
                st = os.fstat(f.fileno())
                data = os.pread(f.fileno(), ref.length, ref.offset)
        except OSError as exc:
            raise FileChanged(chunks.path) from exc
        same_file = (st.st_size, st.st_mtime_ns) == (chunks.stamp.size, chunks.stamp.mtime_ns)
        if not same_file or len(data) != ref.length or blake3_hex(data) != digest:
            raise FileChanged(chunks.path)
        return data


class ChunkUploader:
    """Sends chunks in requests of up to ``batch_bytes`` (uncompressed)."""

    def __init__(
        self,
        client: SiteClient,
        repo: str,
        locator: ChunkLocator,
        progress: ProgressSink,
        *,
        batch_bytes: int = UPLOAD_BATCH_BYTES,
    ) -> None:
        self._client = client
        self._repo = repo
        self._locator = locator
        self._progress = progress
        self._batch_bytes = batch_bytes
        self.sent: set[str] = set()
        self.chunks_sent = 0
        self.bytes_sent = 0

    def total_bytes(self, digests: Iterable[str]) -> int:
        return sum(self._locator.length(d) for d in self._sendable(digests))

    def upload(self, digests: Iterable[str]) -> None:
        """Upload each known, not yet sent digest; FileChanged leaves the rest unsent."""
        ordered = sorted(self._sendable(digests), key=self._locator.read_order)
        for batch in self._batches(ordered):
            frames = [(digest, self._locator.read(digest)) for digest in batch]
            result = self._client.upload_chunks(self._repo, frames)
            self.sent.update(batch)
            self.chunks_sent += len(batch)
            self.bytes_sent += result.wire_bytes
            self._progress.advance(sum(len(data) for _, data in frames))

    def _sendable(self, digests: Iterable[str]) -> set[str]:
        return {d for d in digests if d not in self.sent and self._locator.knows(d)}

    def _batches(self, digests: list[str]) -> Iterator[list[str]]:
        batch: list[str] = []
        size = 0
        for digest in digests:
            length = self._locator.length(digest)
            if batch and size + length > self._batch_bytes:
                yield batch
                batch, size = [], 0
            batch.append(digest)
            size += length
        if batch:
            yield batch
