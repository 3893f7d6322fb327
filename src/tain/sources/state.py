"""A job's working area on the site: the staging tree (kept between runs, so rsync's
delta transfer and HTTP conditional requests work) and one SQLite file of state.

``files`` maps a staged path's (size, mtime_ns, inode) to its SHA-256, so an ingest
hashes only files whose stamp moved (as the agent's local index does). ``http`` keeps
each downloaded file's validators (ETag, Last-Modified) for conditional requests. The
state is only a shortcut: losing it costs one full hash of the tree, never data.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from tain.errors import StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS http (
    path TEXT PRIMARY KEY, etag TEXT, last_modified TEXT
);
"""


@dataclass(frozen=True, slots=True)
class Stamp:
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str | None
    last_modified: str | None


class JobState:
    """The staging directories and state file of one job, under ``sources/NAME``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tree = root / "tree"
        self.parts = root / "parts"
        self._lock = threading.Lock()
        try:
            self.tree.mkdir(parents=True, exist_ok=True)
            self.parts.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(root / "state.sqlite3", check_same_thread=False)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the staging area {root}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JobState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cached_sha256(self, path: str, stamp: Stamp) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM files WHERE path = ? AND size = ? AND mtime_ns = ? "
                "AND inode = ?", (path, stamp.size, stamp.mtime_ns, stamp.inode)).fetchone()
        return str(row[0]) if row else None

    def remember_sha256(self, path: str, stamp: Stamp, sha256: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                             (path, stamp.size, stamp.mtime_ns, stamp.inode, sha256))

    def keep_only(self, paths: set[str]) -> None:
        """Forget every file not in ``paths`` (gone from the staging tree)."""
        with self._lock:
            known = [row[0] for row in self._db.execute("SELECT path FROM files")]
            gone = [(p,) for p in known if p not in paths]
            self._db.executemany("DELETE FROM files WHERE path = ?", gone)
            self._db.executemany("DELETE FROM http WHERE path = ?", gone)
            self._db.commit()

    def validators(self, path: str) -> Validators | None:
        with self._lock:
            row = self._db.execute("SELECT etag, last_modified FROM http WHERE path = ?",
                                   (path,)).fetchone()
        return Validators(row[0], row[1]) if row else None

    def remember_validators(self, path: str, found: Validators) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO http VALUES (?, ?, ?)",
                             (path, found.etag, found.last_modified))

    def commit(self) -> None:
        with self._lock:
            self._db.commit()
