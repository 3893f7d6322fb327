"""Making renames durable: the helpers every writer of small state files uses."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries, so a rename or new file in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
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
