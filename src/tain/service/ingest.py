"""Getting bytes into the store: staging uploaded chunks, rebuilding blobs from chunks,
and storing whole uploaded files. The catalog learns of a blob only once it is durable.
"""

from __future__ import annotations

import io
import mmap
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import BinaryIO

import zstandard

from tain.catalog.base import Catalog
from tain.catalog.models import ChunkLocation
from tain.core.chunking import ChunkRef, chunk_bytes, iter_file_chunks
from tain.core.digests import blake3_hex
from tain.errors import (
    DigestMismatch,
    IntegrityError,
    InvalidRequest,
    MissingData,
    NotFound,
    PayloadTooLarge,
)
from tain.service.filecalls import FILE_CALLS
from tain.store.base import BlobGroup, BlobStore

_FRAME_HEAD = struct.Struct(">32sI")
ASSEMBLY_THREADS = 8


def parse_chunk_frames(
    body: bytes, *, max_chunk: int, max_total: int
) -> Iterator[tuple[str, bytes]]:
    """Decompress a chunk upload and yield (blake3 hex, data) per frame, within limits."""
    return parse_frames(body, max_item=max_chunk, max_total=max_total, what="chunk")


def parse_frames(
    body: bytes, *, max_item: int, max_total: int, what: str
) -> Iterator[tuple[str, bytes]]:
    """Decompress an upload of ``digest (32 bytes) | length (u32 BE) | data`` frames and
    yield (digest hex, data) per frame, within limits. ``what`` names the items in errors."""
    reader = zstandard.ZstdDecompressor().stream_reader(body)
    total = 0
    while True:
        head = _read(reader, _FRAME_HEAD.size, what)
        if not head:
            return
        if len(head) != _FRAME_HEAD.size:
            raise InvalidRequest(f"{what} upload ends inside a frame header")
        digest, length = _FRAME_HEAD.unpack(head)
        if length > max_item:
            raise PayloadTooLarge(f"a {what} of {length} bytes exceeds the limit of {max_item}",
                                  hint="send larger files as chunks")
        total += length
        if total > max_total:
            raise PayloadTooLarge(f"{what} upload exceeds {max_total} bytes uncompressed")
        data = _read(reader, length, what)
        if len(data) != length:
            raise InvalidRequest(f"{what} upload ends inside a {what}")
        yield digest.hex(), data


def _read(reader: BinaryIO, size: int, what: str) -> bytes:
    """Read exactly ``size`` bytes (fewer only at the end); bad zstd data is a 400."""
    parts: list[bytes] = []
    want = size
    try:
        while want:
            part = reader.read(want)
            if not part:
                break
            parts.append(part)
            want -= len(part)
    except zstandard.ZstdError as exc:
        raise InvalidRequest(f"{what} upload is not a valid zstd stream: {exc}") from exc
    return b"".join(parts)


def stage_chunks(store: BlobStore, frames: Iterable[tuple[str, bytes]]) -> tuple[int, int]:
    count = size = 0
    for digest, data in frames:
        store.put_chunk(digest, data)
        count += 1
        size += len(data)
    return count, size


def store_small_blobs(
    catalog: Catalog, store: BlobStore, frames: Iterable[tuple[str, bytes]]
) -> tuple[int, int]:
    """Store whole small files sent as (sha256, bytes) frames, as one durable group, then
    record them (with their chunk index) in one transaction: a small new file costs one
    file on the site and no staging. Blobs the catalog already holds are passed over;
    bytes that do not hash to their SHA-256 fail the whole request (nothing recorded).
    Returns (blobs stored, their bytes)."""
    wanted = dict(frames)
    new = [(sha, wanted[sha]) for sha in sorted(set(wanted) - catalog.known_blobs(wanted))]
    if not new:
        return 0, 0

    with store.blob_group() as group, _one_at_a_time(group):
        if group.local_files:
            for sha, data in new:
                group.put(sha, data)
        else:  # each put waits on a round trip (S3)
            with ThreadPoolExecutor(min(ASSEMBLY_THREADS, len(new))) as pool:
                list(pool.map(lambda item: group.put(*item), new))
        group.finish()
        done = [(sha, len(data), chunk_bytes(data)) for sha, data in new]
        catalog.add_blobs(done)
    return len(done), sum(size for _, size, _ in done)


def _one_at_a_time(group: BlobGroup) -> AbstractContextManager[object]:
    """``FILE_CALLS`` for a group of local files (see ``filecalls``); nothing for a
    store across the network, whose puts wait on round trips in parallel."""
    return FILE_CALLS if group.local_files else nullcontext()


def missing_chunks(
    catalog: Catalog, store: BlobStore, digests: Iterable[str]
) -> list[str]:
    wanted = set(digests)
    located = catalog.locate_chunks(wanted)
    rest = wanted - located.keys()
    return sorted(rest - store.has_chunks(rest))


def assemble_blobs(
    catalog: Catalog, store: BlobStore, blobs: Sequence[tuple[str, int, Sequence[tuple[str, int]]]],
) -> None:
    """Rebuild blobs (sha256, size, chunk list) from staged chunks and from chunks
    inside stored blobs, verify each SHA-256, store each durably, then record them all
    (with their chunk index) in the catalog in one transaction."""
    located = catalog.locate_chunks(d for _, _, chunks in blobs for d, _ in chunks)

    with store.blob_group() as group:

        def one(
            blob: tuple[str, int, Sequence[tuple[str, int]]],
        ) -> tuple[str, int, list[ChunkRef]]:
            sha, size, chunks = blob
            return sha, size, _assemble(store, group, located, sha, size, chunks)

        # Reading, hashing and writing overlap in threads; the fsyncs are shared by
        # the whole group (finish), which ends before the catalog hears of any blob.
        with ThreadPoolExecutor(max_workers=ASSEMBLY_THREADS) as pool:
            done = list(pool.map(one, blobs))
        group.finish()
    catalog.add_blobs(done)


def _assemble(
    store: BlobStore, group: BlobGroup, located: Mapping[str, ChunkLocation], sha256: str,
    size: int, chunks: Sequence[tuple[str, int]],
) -> list[ChunkRef]:
    if len(chunks) == 1 and chunks[0][1] == size and group.adopt_chunk(sha256, *chunks[0]):
        return [ChunkRef(chunks[0][0], 0, size)]
    refs: list[ChunkRef] = []
    offset = 0
    with group.new_blob() as writer, _SourceBlobs(store) as sources:
        for digest, length in chunks:
            data = _chunk_data(store, sources, located.get(digest), digest)
            if len(data) != length:
                raise DigestMismatch(f"chunk {digest[:12]} is {len(data)} bytes, not {length}")
            writer.write(data)
            refs.append(ChunkRef(digest, offset, length))
            offset += length
        if offset != size:
            raise DigestMismatch(f"chunks of blob {sha256[:12]} add up to {offset}, not {size}")
        writer.commit(expected_sha256=sha256)
    return refs


class _SourceBlobs:
    """Stored blobs that chunks are copied from, each opened (and verified) once per
    assembly: on S3 an open is a whole download, and one edit of a large file reuses
    thousands of its chunks."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._open: dict[str, BinaryIO | None] = {}
        self._stack = ExitStack()

    def __enter__(self) -> _SourceBlobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def read(self, location: ChunkLocation) -> bytes | None:
        if location.sha256 not in self._open:
            try:
                opened = self._stack.enter_context(self._store.open(location.sha256))
            except (NotFound, IntegrityError):
                opened = None  # fall back to a staged copy of the chunk
            self._open[location.sha256] = opened
        blob = self._open[location.sha256]
        if blob is None:
            return None
        blob.seek(location.offset)
        return blob.read(location.length)


def _chunk_data(
    store: BlobStore, sources: _SourceBlobs, location: ChunkLocation | None, digest: str
) -> bytes:
    if location is not None:
        data = sources.read(location)
        if data is not None and blake3_hex(data) == digest:
            return data
    try:
        return store.get_chunk(digest)
    except (NotFound, IntegrityError) as exc:
        raise MissingData(
            f"chunk {digest[:12]} is neither staged nor inside a stored blob",
            hint="upload it and commit again", chunks=[digest],
        ) from exc


def store_upload(
    catalog: Catalog, store: BlobStore, body: Iterable[bytes], *, expected: str | None,
    max_bytes: int,
) -> tuple[str, int]:
    """Store one uploaded file; returns (sha256, size). Checks ``expected`` if given."""
    with store.new_blob() as writer:
        for part in body:
            writer.write(part)
            if writer.size > max_bytes:
                raise PayloadTooLarge(f"upload exceeds the limit of {max_bytes} bytes")
        size = writer.size
        sha = writer.commit(expected_sha256=expected)
    if not catalog.known_blobs([sha]):
        catalog.add_blob(sha, size, _chunks_of(store, sha))
    return sha, size


def _chunks_of(store: BlobStore, sha256: str) -> list[ChunkRef]:
    path: Path | None = store.local_path(sha256)
    if path is not None:
        return [ref for ref, _ in iter_file_chunks(path)]
    with store.open(sha256) as blob:
        if store.size(sha256) == 0:
            return []
        try:  # a spooled local copy: map it rather than read it into memory
            with mmap.mmap(blob.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return chunk_bytes(memoryview(view))
        except (OSError, ValueError, io.UnsupportedOperation):
            return chunk_bytes(blob.read())
