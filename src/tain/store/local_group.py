"""Blobs written together and made durable together (``LocalStore.blob_group``).

Writing many small blobs one by one costs two fsyncs each (the file, then its fan-out
directory after the link), one after the other. A group keeps the order that makes a
blob safe - its bytes are durable before its name appears, and the name is durable
before ``finish`` returns - but does each step for the whole group at once: every temp
file is fsynced (in parallel threads), then every blob is linked into place, then each
fan-out directory that gained a name is fsynced once. A blob that is one staged chunk
is not copied at all: the chunk's file is hard-linked and becomes the blob
(``adopt_chunk``; a staged chunk is never rewritten in place, only replaced by rename,
so the blob's bytes cannot change under it).

A large group (``SYNCFS_MIN`` blobs or more) makes the same two steps with two syncfs(2)
calls per filesystem instead of one fsync per file and per fan-out directory: one
before the first link (every temp file's bytes are then durable), one after the last
(every new name is). On a site's data disk the dirty data is mostly the site's own,
so this costs about what the per-file fsyncs cost in I/O and saves their round trips:
hundreds of small files sync in tens of milliseconds instead of hundreds. Small
groups keep per-file fsyncs, so a one-file commit never waits for unrelated writes.

A crash at any moment leaves at most temp files (removed by ``clean_tmp``) and blobs
that are complete, verified and durable; the catalog learns of the blobs only after
``finish`` returns.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tain.errors import DigestMismatch, StorageError
from tain.store.durable import can_sync_filesystems, fsync_dir, fsync_file, sync_filesystem

if TYPE_CHECKING:
    from tain.store.local import LocalBlobWriter, LocalStore

log = logging.getLogger("tain.store")

SYNC_THREADS = 16
_Pending = tuple[str, str | Path, Path]  # sha256, its complete temp file, the temp's data dir
SYNCFS_MIN = 64


class LocalBlobGroup:
    """``new_blob`` writers whose ``commit`` checks the digest and defers the rest to
    ``finish``; leaving the ``with`` block without ``finish`` discards what is pending."""

    local_files = True

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._single = store.copies == 1 and len(store.data_dirs) == 1
        self._fanouts: dict[tuple[Path, str], Path] = {}

    def new_blob(self) -> LocalBlobWriter:
        from tain.store.local import LocalBlobWriter

        root, fd, path = self._store._open_blob_temp()
        return LocalBlobWriter(self._store, root, fd, path, group=self)

    def put(self, sha256: str, data: bytes) -> None:
        """Store ``data`` as blob ``sha256`` (checked first): one write into a temp file
        created read-only, as a blob ends up, so no ``fchmod`` either."""
        from tain.store.local import BLOB_MODE, _storage_error, _write_all

        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise DigestMismatch(f"blob bytes hash to {actual}, not {sha256}",
                                 expected=sha256, actual=actual)
        root, fd, path = self._store._open_blob_temp(BLOB_MODE)
        try:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            _remove([path])
            raise _storage_error("write a blob", root, exc) from exc
        self.add(sha256, path, root)

    def adopt_chunk(self, sha256: str, digest: str, size: int) -> bool:
        """Commit blob ``sha256`` from the staged chunk ``digest`` that holds all of its
        bytes, by a hard link instead of a copy: a new small file then costs one file
        on the site, not two. False (nothing done) when that chunk is not staged intact."""
        temp = self._store._adopt_staged(digest, sha256, size)
        if temp is None:
            return False
        self.add(sha256, temp, self._store.data_dirs[0])
        return True

    def add(self, sha256: str, temp: str | Path, root: Path) -> None:
        """Take over a complete, verified temp file (called by the writer's commit)."""
        with self._lock:
            self._pending.append((sha256, temp, root))

    def finish(self) -> None:
        """Make every committed blob durable and visible under its name."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            if len(pending) >= SYNCFS_MIN and can_sync_filesystems():
                placed = self._finish_by_syncfs(pending)
            else:
                placed = self._finish_by_fsyncs(pending)
        except OSError as exc:
            raise StorageError(f"cannot store a group of blobs: {exc.strerror or exc}") from exc
        finally:
            _remove(temp for _, temp, _ in pending)
        for (sha256, _, _), dirs in zip(pending, placed, strict=True):
            self._store._remember_verified(sha256, dirs)

    def _finish_by_fsyncs(self, pending: list[_Pending]) -> list[list[Path]]:
        with ThreadPoolExecutor(min(SYNC_THREADS, len(pending))) as pool:
            list(pool.map(fsync_file, (temp for _, temp, _ in pending)))
            placed = list(pool.map(self._place, pending))
            list(pool.map(fsync_dir, sorted({d for dirs in placed for d in dirs})))
        return placed

    def _finish_by_syncfs(self, pending: list[_Pending]) -> list[list[Path]]:
        filesystems = _one_per_filesystem(self._store.data_dirs)
        for path in filesystems:
            sync_filesystem(path)
        placed = [self._place(item) for item in pending]
        for path in filesystems:
            sync_filesystem(path)
        return placed

    def discard(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        _remove(temp for _, temp, _ in pending)

    def _place(self, item: _Pending) -> list[Path]:
        """Link one blob into place: with one data dir and one copy (the common case)
        straight into its fan-out dir; anything unusual (a copy there already, a
        missing directory, several data dirs) goes the general way."""
        sha256, temp, root = item
        if self._single:
            fanout = self._fanout(root, sha256[:2])
            try:
                os.link(temp, f"{fanout}/{sha256}")
            except OSError:
                pass
            else:
                return [fanout]
        return self._store._publish(sha256, temp, root, sync_dirs=False)

    def _fanout(self, root: Path, prefix: str) -> Path:
        key = (root, prefix)
        path = self._fanouts.get(key)
        if path is None:
            path = self._fanouts[key] = root / "blobs" / prefix
        return path

    def __enter__(self) -> LocalBlobGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()


def _one_per_filesystem(dirs: Iterable[Path]) -> list[Path]:
    """One available data dir per filesystem (a missing disk is passed over, as
    placement passes over it)."""
    chosen: dict[int, Path] = {}
    for path in dirs:
        try:
            chosen.setdefault(os.stat(path).st_dev, path)
        except OSError:
            continue
    return list(chosen.values())


def _remove(paths: Iterable[str | Path]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc.strerror or exc)
