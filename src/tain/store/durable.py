"""Making writes and renames durable: the helpers every writer uses."""

from __future__ import annotations

import ctypes
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries, so a rename or new file in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file's bytes (written and closed elsewhere) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(path: Path, value: Any) -> None:
    """Replace ``path`` with ``value`` as JSON: temp file, fsync, rename, fsync the
    directory, so a reader sees the old state or the new one, never a torn one."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(value, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return func


_SYNCFS = _load_syncfs()


def can_sync_filesystems() -> bool:
    return _SYNCFS is not None


def sync_filesystem(path: Path) -> None:
    """syncfs(2) on the filesystem holding ``path``: every dirty file and directory on
    it is written out before this returns, and a writeback error is raised (Linux
    reports those to syncfs since 5.8), as fsync does for one file."""
    if _SYNCFS is None:
        raise OSError(errno.ENOSYS, "syncfs is not available here")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
