"""Content-defined chunking (FastCDC) for transfer.

Chunks are only a transfer and reuse device: blobs stay whole. The sizes below give
about 256 KiB chunks on average, so one edited byte in a large file costs one chunk
(at most 1 MiB), while a small file is one chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyfastcdc.cy import FastCDC

from tain.core.digests import blake3_hex

MIN_CHUNK = 64 * 1024
AVG_CHUNK = 256 * 1024
MAX_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One chunk of a blob: its BLAKE3, where it starts and how long it is."""

    digest: str
    offset: int
    length: int


def _cutter() -> FastCDC:
    return FastCDC(avg_size=AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK)


def chunk_bytes(data: bytes | memoryview) -> list[ChunkRef]:
    if len(data) == 0:
        return []
    if len(data) <= MIN_CHUNK:  # never cut: one chunk, without starting a cutter
        return [ChunkRef(blake3_hex(data), 0, len(data))]
    return [
        ChunkRef(blake3_hex(c.data), c.offset, c.length) for c in _cutter().cut_buf(data)
    ]


def iter_file_chunks(path: Path) -> Iterator[tuple[ChunkRef, memoryview]]:
    """Yield each chunk of a file with its bytes (memory-mapped, not read whole)."""
    if path.stat().st_size == 0:
        return
    for c in _cutter().cut_file(str(path)):
        yield ChunkRef(blake3_hex(c.data), c.offset, c.length), c.data
