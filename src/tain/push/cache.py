"""A persistent hash cache, so a second push over unchanged files reads none of them.

One SQLite file per (directory, site, repository) maps a file's path and stamp (size,
mtime, ctime, inode) to its SHA-256 and, once computed, its chunk list. A changed stamp
means "hash again"; ctime catches a file whose mtime was set back. The cache is only a
shortcut: a broken cache file is replaced, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tain.core.chunking import ChunkRef
from tain.errors import StorageError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    chunks TEXT
)
"""


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What must stay equal for a file's cached digests to stay valid."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass(frozen=True, slots=True)
class CachedDigests:
    sha256: str
    chunks: tuple[ChunkRef, ...] | None


def default_cache_path(
    directory: Path, site_url: str, repo: str, env: Mapping[str, str] | None = None
) -> Path:
    """``$XDG_CACHE_HOME/tain/push-<hash>.sqlite3`` (default ``~/.cache/tain``)."""
    env = os.environ if env is None else env
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    key = "\0".join((str(directory.resolve()), site_url.rstrip("/"), repo))
    return base / "tain" / f"push-{hashlib.sha256(key.encode()).hexdigest()[:32]}.sqlite3"


class HashCache:
    """Cached digests by repository path; ``None`` as path keeps them in memory only."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            return _open(":memory:")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                return _open(str(self.path))
            except sqlite3.DatabaseError:
                self.path.unlink(missing_ok=True)  # a cache may always be thrown away
                return _open(str(self.path))
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot use the hash cache {self.path}: {exc}",
                hint="pass --cache PATH to put it somewhere writable",
            ) from exc

    def files(self) -> list[Path]:
        """The files this cache occupies (a scan must not push them)."""
        if self.path is None:
            return []
        return [self.path, *(Path(f"{self.path}{s}") for s in ("-journal", "-wal", "-shm"))]

    def lookup(self, path: str, stamp: FileStamp) -> CachedDigests | None:
        row = self._db.execute(
            "SELECT size, mtime_ns, ctime_ns, inode, sha256, chunks FROM files WHERE path = ?",
            (path,),
        ).fetchone()
        if row is None or FileStamp(*row[:4]) != stamp:
            return None
        return CachedDigests(row[4], _load_chunks(row[5]))

    def store(
        self,
        path: str,
        stamp: FileStamp,
        sha256: str,
        chunks: tuple[ChunkRef, ...] | None = None,
    ) -> None:
        encoded = None if chunks is None else json.dumps([[c.digest, c.length] for c in chunks])
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (path, stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.inode, sha256, encoded),
        )

    def keep_only(self, paths: set[str]) -> None:
        """Forget every file not in ``paths`` (they vanished from the directory)."""
        stale = [(p,) for (p,) in self._db.execute("SELECT path FROM files") if p not in paths]
        self._db.executemany("DELETE FROM files WHERE path = ?", stale)

    def save(self) -> None:
        self._db.commit()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.commit()
        self._db.close()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(target: str) -> sqlite3.Connection:
    db = sqlite3.connect(target, timeout=30)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            db.execute("DROP TABLE IF EXISTS files")
        db.execute(_SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _load_chunks(raw: str | None) -> tuple[ChunkRef, ...] | None:
    if raw is None:
        return None
    refs, offset = [], 0
    for digest, length in json.loads(raw):
        refs.append(ChunkRef(digest, offset, length))
        offset += length
    return tuple(refs)
