"""Chunking files and uploading the chunks the site lacks, never torn content.

A chunk list is computed in one pass that also hashes the file, and kept only when the
file's stamp did not move during the pass. The pass reads the file with ``read``, not
through a memory map, so a file truncated while it is read is a retry, not a SIGBUS.
Chunk bytes are re-read by offset when sent and checked against their BLAKE3 and the
file's stamp; a mismatch raises ``FileChanged`` so the pusher chunks that file again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from tain.client import BlobsUnsupported, SiteClient, UploadResult, encode_chunk_frames
from tain.core.chunking import MIN_CHUNK, ChunkRef
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
        """The chunk's bytes: those kept from the snapshot's read (a small file), else
        re-read from its file; FileChanged if they are not the same."""
        chunks, ref = self._where[digest][0]
        if chunks.data is not None:
            return chunks.data
        try:
            with open(chunks.location, "rb") as f:
                st = os.fstat(f.fileno())
                data = os.pread(f.fileno(), ref.length, ref.offset)
        except OSError as exc:
            raise FileChanged(chunks.path) from exc
        same_file = (st.st_size, st.st_mtime_ns) == (chunks.stamp.size, chunks.stamp.mtime_ns)
        if not same_file or len(data) != ref.length or blake3_hex(data) != digest:
            raise FileChanged(chunks.path)
        return data


class ChunkUploader:
    """Sends chunks, or whole small files as blobs, in requests of up to ``batch_bytes``
    (uncompressed).

    With ``workers`` > 1 up to that many requests are in flight at once (bytes are
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
        """Chunks sent, by BLAKE3 (a small file sent whole counts as its one chunk)."""
        self.chunks_sent = 0
        self.bytes_sent = 0

    def total_bytes(self, digests: Iterable[str]) -> int:
        return sum(self._locator.length(d) for d in self._sendable(digests))

    def upload(self, digests: Iterable[str]) -> None:
        """Upload each known, not yet sent chunk; FileChanged leaves the rest unsent."""
        self._run([(d, d) for d in self._sendable(digests)], blobs=False)

    def upload_blobs(self, files: Iterable[FileChunks]) -> None:
        """Upload whole each small file (one chunk, see ``is_small``) not yet sent, as a
        blob the site stores at once; FileChanged leaves the rest unsent."""
        items = {f.sha256: f.chunks[0].digest for f in files if is_small(f)}
        self._run([(sha, d) for sha, d in items.items() if d in self._sendable([d])],
                  blobs=True)

    def _run(self, items: list[tuple[str, str]], *, blobs: bool) -> None:
        """Send (frame key, chunk digest) items: the key names the frame, the chunk
        digest says where its bytes are."""
        ordered = sorted(items, key=lambda item: self._locator.read_order(item[1]))
        if self._workers == 1:
            for batch in self._batches(ordered):
                payload, size = self._encode(batch)
                self._done(batch, size, self._send(payload, blobs))
            return
        with ThreadPoolExecutor(self._workers, thread_name_prefix="tain-upload") as pool:
            self._upload_parallel(pool, ordered, blobs)

    def _upload_parallel(
        self, pool: ThreadPoolExecutor, ordered: list[tuple[str, str]], blobs: bool
    ) -> None:
        """Read and compress in this thread, send from the pool: only compressed
        payloads wait in memory, at most ``workers`` of them."""
        pending: dict[Future[UploadResult], tuple[list[tuple[str, str]], int]] = {}
        try:
            for batch in self._batches(ordered):
                while len(pending) >= self._workers:
                    self._collect(pending, wait(pending, return_when=FIRST_COMPLETED).done)
                payload, size = self._encode(batch)
                pending[pool.submit(self._send, payload, blobs)] = (batch, size)
                del payload
        finally:  # let what is in flight finish (or fail) before returning or raising
            done = wait(pending).done
        self._collect(pending, done)

    def _collect(
        self,
        pending: dict[Future[UploadResult], tuple[list[tuple[str, str]], int]],
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

    def _encode(self, batch: list[tuple[str, str]]) -> tuple[bytes, int]:
        """The request body for ``batch`` and the bytes it carries."""
        frames = [(key, self._locator.read(digest)) for key, digest in batch]
        return encode_chunk_frames(frames), sum(len(data) for _, data in frames)

    def _send(self, payload: bytes, blobs: bool) -> UploadResult:
        if self._before_send is not None:
            self._before_send(len(payload))
        return self._client.upload_encoded(self._repo, payload, blobs=blobs)

    def _done(self, batch: list[tuple[str, str]], size: int, result: UploadResult) -> None:
        self.sent.update(digest for _, digest in batch)
        self.chunks_sent += len(batch)
        self.bytes_sent += result.wire_bytes
        self._progress.advance(size)

    def _sendable(self, digests: Iterable[str]) -> set[str]:
        return {d for d in digests if d not in self.sent and self._locator.knows(d)}

    def _batches(self, items: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
        batch: list[tuple[str, str]] = []
        size = 0
        for item in items:
            length = self._locator.length(item[1])
            if batch and size + length > self._batch_bytes:
                yield batch
                batch, size = [], 0
            batch.append(item)
            size += length
        if batch:
            yield batch


def is_small(snap: FileChunks) -> bool:
    """Whether a file goes to the site whole, as a blob, rather than as chunks: it is one
    chunk of at most ``MIN_CHUNK`` bytes (smaller than any chunk of a larger file, so
    asking whether the site holds that chunk costs more than sending it)."""
    return len(snap.chunks) == 1 and snap.stamp.size <= MIN_CHUNK


def split_small(
    snaps: Iterable[FileChunks], client: SiteClient
) -> tuple[list[FileChunks], list[FileChunks]]:
    """(small files to send whole, the rest to send as chunks): see ``is_small``; all go
    as chunks to a site that cannot store whole files."""
    small: list[FileChunks] = []
    rest: list[FileChunks] = []
    for snap in snaps:
        (small if client.blob_uploads and is_small(snap) else rest).append(snap)
    return small, rest


STREAM_FILES = 256
STREAM_BYTES = 4 * 1024 * 1024
STREAM_WORKERS = 2
"""Requests of small files in flight at most: a site stores one request's files at a
time, so a second one in flight keeps it busy; more only add threads that trade the
site's GIL (measured on a burst of 5,000 files: 4 in flight cost the site 20% more
context switches and the agent twice as many, for no gain in latency)."""


class SmallFileStream:
    """Sends small files whole while the caller goes on reading others.

    Every ``STREAM_FILES`` files (or ``STREAM_BYTES``) one task asks which of their blobs
    the site lacks and uploads those; up to ``workers`` (at most ``STREAM_WORKERS``)
    tasks run at once, and ``add`` waits while that many are in flight. Only files whose
    bytes were kept from their read are taken (``add`` returns False for others): they
    are a snapshot already, so nothing is read again and nothing can be torn.
    ``finish`` sends the rest and raises the first failure; ``close`` (also on errors)
    waits for what is in flight.
    ``on_site`` names the blobs the site was seen to hold (it had them, or stored them),
    so that a commit need not ask about them again. ``ask`` says whether the next batch
    asks the site first (see ``_send``); a stream that follows this one may start
    where this one ended.
    """

    def __init__(
        self,
        client: SiteClient,
        repo: str,
        *,
        workers: int,
        before_send: Callable[[int], None] | None = None,
        ask: bool = True,
    ) -> None:
        self._client = client
        self._repo = repo
        self._workers = max(1, min(STREAM_WORKERS, workers))
        self._before_send = before_send
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="tain-stream")
        self._batch: list[FileChunks] = []
        self._batch_bytes = 0
        self._running: set[Future[UploadResult | None]] = set()
        self._failure: BaseException | None = None
        self.files_sent = 0
        self.bytes_sent = 0
        self.on_site: set[str] = set()
        self._seen_lock = threading.Lock()
        self.ask = ask  # ask the site what it lacks before an upload (see _send)

    def add(self, snap: FileChunks) -> bool:
        if snap.data is None or not is_small(snap) or not self._client.blob_uploads:
            return False
        self._batch.append(snap)
        self._batch_bytes += len(snap.data)
        if len(self._batch) >= STREAM_FILES or self._batch_bytes >= STREAM_BYTES:
            self._submit()
        return True

    def finish(self) -> None:
        self._submit()
        self._collect(wait(self._running).done)
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        for future in self._running:
            future.cancel()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> SmallFileStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self) -> None:
        if not self._batch:
            return
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        while len(self._running) >= self._workers:
            self._collect(wait(self._running, return_when=FIRST_COMPLETED).done)
        if self._failure is None:
            self._running.add(self._pool.submit(self._send, batch))

    def _collect(self, done: Iterable[Future[UploadResult | None]]) -> None:
        for future in done:
            self._running.discard(future)
            error = future.exception()
            if error is not None:
                self._failure = self._failure or error
                continue
            result = future.result()
            if result is not None:
                self.files_sent += result.stored
                self.bytes_sent += result.wire_bytes

    def _send(self, batch: list[FileChunks]) -> UploadResult | None:
        """Upload what the site lacks of ``batch``. The site is asked first only while
        asking pays: once a batch turns out wholly new (a burst of new files), the next
        ones go without the question, until an upload finds blobs the site had."""
        shas = sorted({snap.sha256 for snap in batch})
        asked = self.ask
        if asked:
            lacking = set(self._client.missing(self._repo, blobs=shas).blobs)
            self._seen(sha for sha in shas if sha not in lacking)
            self.ask = len(lacking) < len(shas)
        else:
            lacking = set(shas)
        frames = {s.sha256: s.data for s in batch if s.sha256 in lacking and s.data is not None}
        if not frames:
            return None
        payload = encode_chunk_frames(frames.items())
        if self._before_send is not None:
            self._before_send(len(payload))
        try:
            result = self._client.upload_encoded(self._repo, payload, blobs=True)
        except BlobsUnsupported:
            return None  # an older site: they stay lacking and go as chunks
        self._seen(frames)
        if not asked and result.stored < len(frames):
            self.ask = True  # the site held some of them: asking saves bytes again
        return result

    def _seen(self, shas: Iterable[str]) -> None:
        with self._seen_lock:
            self.on_site.update(shas)
