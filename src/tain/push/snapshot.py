"""One read of a file: its SHA-256 and its chunk list from the same bytes, kept only
when the file did not change while it was read (a torn read is retried, never used).

The pass reads the file with ``read``, not through a memory map, so a file truncated
while it is read is a retry, not a SIGBUS.

Equal stamps before and after the read prove nothing about a file written during the
same tick of the kernel's coarse clock that timestamps writes (1 to 10 ms): a writer
that writes half, flushes and writes the rest can leave the stamp unchanged while the
read saw the half-written state ("racy git"). So a read is trusted only when the
file's ctime, which only the kernel sets, is older than ``RACY_NS`` before the read
began; a fresher file is read again a moment later.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyfastcdc.cy import FastCDC

from tain.core.chunking import AVG_CHUNK, MAX_CHUNK, MIN_CHUNK, ChunkRef, chunk_bytes
from tain.core.digests import blake3_hex
from tain.push.cache import FileStamp

HASH_ATTEMPTS = 3
RACY_NS = 20_000_000  # more than a tick of the coarse clock that stamps writes


class FileChanged(Exception):
    """A file kept changing while it was read; its content is not a snapshot.
    ``racy``: it did not visibly change, but was written too recently to be sure."""

    def __init__(self, path: str, *, racy: bool = False) -> None:
        super().__init__(f"{path} changed while it was read")
        self.path = path
        self.racy = racy


@dataclass(frozen=True, slots=True)
class FileChunks:
    """One snapshot of a file: its digest, stamp, mode and chunks."""

    path: str
    location: str | Path
    stamp: FileStamp
    mode: int
    sha256: str
    chunks: tuple[ChunkRef, ...]
    data: bytes | None = None
    """The bytes of a small file as read (``keep_small``): sent without a second read."""

    def chunk_pairs(self) -> tuple[tuple[str, int], ...]:
        return tuple((c.digest, c.length) for c in self.chunks)


def chunk_file(path: str, location: Path, *, attempts: int = HASH_ATTEMPTS) -> FileChunks:
    """Chunk and hash a file in one pass; retry while it changes under us."""
    for _ in range(attempts):
        try:
            return read_snapshot(path, location)
        except FileChanged as changed:
            if changed.racy:
                time.sleep(RACY_NS / 1e9)  # written just now: let the clock move on
            continue
    raise FileChanged(path)


def read_snapshot(path: str, location: str | Path, *, keep_small: bool = False,
                  now_ns: Callable[[], int] = time.time_ns) -> FileChunks:
    """One pass over a regular file (never through a symlink): SHA-256 and chunks, and
    with ``keep_small`` the bytes of a file of one chunk of at most ``MIN_CHUNK``.

    Raises ``FileChanged`` when the file's stamp (size, mtime, ctime, inode) moved
    during the pass, when it was written too recently to tell (``racy``), or when the
    path stopped naming a regular file; ``OSError`` when it cannot be opened
    (``FileNotFoundError`` when it vanished).
    """
    started_ns = now_ns()
    fd = os.open(location, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb", buffering=0) as f:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise FileChanged(path)
        if before.st_size <= MIN_CHUNK:  # one chunk at most: no cutter to start
            refs, sha, size, data = _read_small(fd, keep_small)
        else:
            refs, sha, size, data = [], hashlib.sha256(), 0, None
            for c in _cutter().cut_stream(f):
                refs.append(ChunkRef(blake3_hex(c.data), c.offset, c.length))
                sha.update(c.data)
                size += c.length
                if keep_small and size <= MIN_CHUNK:
                    data = bytes(c.data)
    try:
        after = os.lstat(location)
    except FileNotFoundError as exc:
        raise FileChanged(path) from exc
    stamp = FileStamp.of(after)
    if FileStamp.of(before) != stamp or size != stamp.size:
        raise FileChanged(path)
    if stamp.ctime_ns > started_ns - RACY_NS:
        raise FileChanged(path, racy=True)
    return FileChunks(path, location, stamp, after.st_mode & 0o7777, sha.hexdigest(),
                      tuple(refs), data if len(refs) == 1 else None)


def _read_small(
    fd: int, keep: bool
) -> tuple[list[ChunkRef], hashlib._Hash, int, bytes | None]:
    """A file that was at most ``MIN_CHUNK`` bytes when opened, read whole: its one
    chunk (none when empty), as the cutter would give it. Bytes beyond ``MIN_CHUNK``
    (it grew) are read too, so that the stamp check after the read sees the change."""
    data = os.read(fd, MIN_CHUNK + 1)
    if len(data) > MIN_CHUNK:  # it grew: read the rest, so that the stamp check sees it
        parts = [data]
        while part := os.read(fd, MIN_CHUNK + 1):
            parts.append(part)
        data = b"".join(parts)
    refs = chunk_bytes(data)
    return refs, hashlib.sha256(data), len(data), data if keep and len(refs) == 1 else None


def _cutter() -> FastCDC:
    """The same cut points as ``tain.core.chunking`` (same parameters), from a stream."""
    return FastCDC(avg_size=AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK)
