"""Chunking files and uploading the chunks the site lacks, never torn content.

A chunk list is computed in one pass that also hashes the file, and kept only when the
file's stamp did not move during the pass. The pass reads the file with ``read``, not
through a memory map, so a file truncated while it is read is a retry, not a SIGBUS.
Chunk bytes are re-read by offset when sent and checked against their BLAKE3 and the
file's stamp; a mismatch raises ``FileChanged`` so the pusher chunks that file again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from tain.client import SiteClient, UploadResult, encode_chunk_frames
from tain.core.chunking import ChunkRef
from tain.core.digests import blake3_hex
from tain.push.progress import ProgressSink
from tain.push.snapshot import FileChanged
from tain.push.snapshot import FileChunks as FileChunks
from tain.push.snapshot import chunk_file as chunk_file
from tain.push.snapshot import read_snapshot as read_snapshot

UPLOAD_BATCH_BYTES = 16 * 1024 * 1024


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
    """Sends chunks in requests of up to ``batch_bytes`` (uncompressed).

    With ``workers`` > 1 up to that many requests are in flight at once (chunks are
    still read and compressed, in order, by the calling thread). ``before_send(n)`` is
    called with the compressed size of each request before it is sent: a bandwidth
    limit sleeps there, and whatever it raises stops the upload.
    """

    def __init__(
        self,
        client: SiteClient,
        repo: str,
        locator: ChunkLocator,
        progress: ProgressSink,
        *,
        batch_bytes: int = UPLOAD_BATCH_BYTES,
        workers: int = 1,
        before_send: Callable[[int], None] | None = None,
    ) -> None:
        self._client = client
        self._repo = repo
        self._locator = locator
        self._progress = progress
        self._batch_bytes = batch_bytes
        self._workers = max(1, workers)
        self._before_send = before_send
        self.sent: set[str] = set()
        self.chunks_sent = 0
        self.bytes_sent = 0

    def total_bytes(self, digests: Iterable[str]) -> int:
        return sum(self._locator.length(d) for d in self._sendable(digests))

    def upload(self, digests: Iterable[str]) -> None:
        """Upload each known, not yet sent digest; FileChanged leaves the rest unsent."""
        ordered = sorted(self._sendable(digests), key=self._locator.read_order)
        if self._workers == 1:
            for batch in self._batches(ordered):
                payload, size = self._encode(batch)
                self._done(batch, size, self._send(payload))
            return
        with ThreadPoolExecutor(self._workers, thread_name_prefix="tain-upload") as pool:
            self._upload_parallel(pool, ordered)

    def _upload_parallel(self, pool: ThreadPoolExecutor, ordered: list[str]) -> None:
        """Read and compress in this thread, send from the pool: only compressed
        payloads wait in memory, at most ``workers`` of them."""
        pending: dict[Future[UploadResult], tuple[list[str], int]] = {}
        try:
            for batch in self._batches(ordered):
                while len(pending) >= self._workers:
                    self._collect(pending, wait(pending, return_when=FIRST_COMPLETED).done)
                payload, size = self._encode(batch)
                pending[pool.submit(self._send, payload)] = (batch, size)
                del payload
        finally:  # let what is in flight finish (or fail) before returning or raising
            done = wait(pending).done
        self._collect(pending, done)

    def _collect(
        self,
        pending: dict[Future[UploadResult], tuple[list[str], int]],
        done: Iterable[Future[UploadResult]],
    ) -> None:
        failure: BaseException | None = None
        for future in done:
            batch, size = pending.pop(future)
            if future.exception() is not None:
                failure = failure or future.exception()
                continue
            self._done(batch, size, future.result())
        if failure is not None:
            raise failure

    def _encode(self, batch: list[str]) -> tuple[bytes, int]:
        """The request body for ``batch`` and the chunk bytes it carries."""
        frames = [(digest, self._locator.read(digest)) for digest in batch]
        return encode_chunk_frames(frames), sum(len(data) for _, data in frames)

    def _send(self, payload: bytes) -> UploadResult:
        if self._before_send is not None:
            self._before_send(len(payload))
        return self._client.upload_encoded(self._repo, payload)

    def _done(self, batch: list[str], size: int, result: UploadResult) -> None:
        self.sent.update(batch)
        self.chunks_sent += len(batch)
        self.bytes_sent += result.wire_bytes
        self._progress.advance(size)

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
