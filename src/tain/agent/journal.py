"""The agent's durable state: one SQLite database (WAL) in its state directory.

Tables::

    remote  what the site holds, for every path that is not dirty: kind, mode, mtime,
            SHA-256, size, link target. It describes revision ``remote_rev`` of the site
            ``remote_site`` (both in ``meta``).
    cache   what each local file held when it was last read: its stamp (size, mtime,
            ctime, inode), when it was read, its SHA-256 and chunk list. A file whose
            stamp did not move is never read again.
    dirty   the durable queue: paths that may differ from ``remote`` (``tree``: and
            everything below), with the times of their first and latest change and a
            sequence number that every change bumps. A path leaves the queue only in the
            transaction that records the commit carrying its state, and only if no
            change came after it was taken (its ``seq`` did not move).
    meta    agent id, the site record, the last commit, the last error, the mode.

Every transaction survives the agent's death (``kill -9``). The sync loop's also
survive a power cut (``synchronous=FULL``); the event recorder's need not (NORMAL: no
fsync per batch of marks, which would slow down the very writes being watched), as the
stat walk at the next start finds any change whose mark a power cut took away.

Times in ``dirty`` come from a monotonic clock; they mean nothing to another process,
so the agent that opens the journal resets them (everything queued is ready at once).
Two connections write: the event recorder (marks) and the sync loop (everything else);
SQLite serialises them and both transactions are short.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tain.agent.debounce import Policy, cutoffs
from tain.core.chunking import ChunkRef
from tain.core.manifest import Entry, Kind
from tain.core.paths import parent_of
from tain.errors import StorageError
from tain.push.cache import FileStamp

T = TypeVar("T")
JOURNAL_NAME = "journal.sqlite3"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS remote (
    path TEXT PRIMARY KEY, parent TEXT NOT NULL, kind TEXT NOT NULL, mode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, sha256 TEXT, size INTEGER NOT NULL, target TEXT
);
CREATE INDEX IF NOT EXISTS remote_parent ON remote (parent);
CREATE TABLE IF NOT EXISTS cache (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, hashed_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL, chunks BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_inode ON cache (inode);
CREATE TABLE IF NOT EXISTS dirty (
    path TEXT PRIMARY KEY, tree INTEGER NOT NULL, writing INTEGER NOT NULL,
    first_at REAL NOT NULL, last_at REAL NOT NULL, seq INTEGER NOT NULL
);
"""
_ENTRY_COLUMNS = "path, kind, mode, mtime_ns, sha256, size, target"
_CACHE_COLUMNS = "size, mtime_ns, ctime_ns, inode, hashed_ns, sha256, chunks"
LONG_AGO = -1e9  # the change time of a path that is ready at once
_BATCH = 500


@dataclass(frozen=True, slots=True)
class Mark:
    """One observed change of ``path``: ``writing`` when a writer may still be at it
    (created, modified), not after a close, rename, delete or attribute change."""

    path: str
    at: float
    writing: bool = False
    tree: bool = False


@dataclass(frozen=True, slots=True)
class DirtyItem:
    path: str
    tree: bool
    writing: bool
    first_at: float
    last_at: float
    seq: int


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A file's digests as read at ``hashed_ns`` (wall clock), valid for ``stamp``."""

    stamp: FileStamp
    hashed_ns: int
    sha256: str
    chunks: tuple[ChunkRef, ...]


class JournalError(StorageError):
    """The agent's own journal cannot be read or written (a local problem)."""


class SeqCounter:
    """Change sequence numbers, shared by every connection of one process."""

    def __init__(self, start: int = 0) -> None:
        self._next = itertools.count(start + 1)
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            return next(self._next)


class Journal:
    """One connection to a state directory's journal (not shared between threads)."""

    def __init__(
        self,
        state_dir: Path,
        seq: SeqCounter | None = None,
        *,
        readonly: bool = False,
        fsync: bool = True,
    ) -> None:
        self.state_dir = state_dir
        self.path = state_dir / JOURNAL_NAME
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10,
                                           isolation_level=None)
                self._check_version()
            else:
                state_dir.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None,
                                           check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
                self._migrate()
            self._db.execute("PRAGMA busy_timeout=60000")
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(
                f"cannot open the agent journal {self.path}: {exc}",
                hint="pass --state-dir DIR to put it somewhere writable",
            ) from exc
        self.seq = seq or SeqCounter(self._max_seq())

    def _check_version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version not in (0, SCHEMA_VERSION):
            raise JournalError(
                f"{self.path} was written by another version of tain (schema {version})",
                hint="use a new --state-dir; the agent rebuilds its state from the site",
            )
        return version

    def _migrate(self) -> None:
        self._check_version()
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _max_seq(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(seq), 0) FROM dirty").fetchone()[0])

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise JournalError(f"agent journal {self.path}: {exc}") from exc

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"agent journal {self.path}: {exc}") from exc

    def _rows_in(self, select: str, column: str, values: Iterable[object]) -> Iterator[Any]:
        """The rows of ``SELECT {select} WHERE {column} IN (values)``, asked in batches
        (SQLite limits the number of parameters of one statement)."""
        for batch in _batched(values, _BATCH):
            marks = ",".join("?" * len(batch))
            yield from self._query(f"SELECT {select} WHERE {column} IN ({marks})", batch)

    # -- meta ----------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._query("SELECT key, value FROM meta")}

    def get(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set(self, values: Mapping[str, object | None]) -> None:
        """Set (or, for None, remove) several settings in one transaction."""
        with self._tx() as db:
            _set_meta(db, values)

    def remote_record(self) -> tuple[str, int] | None:
        """(site URL, revision) that ``remote`` describes, or None when unknown."""
        meta = self.meta()
        if "remote_site" not in meta or "remote_rev" not in meta:
            return None
        return meta["remote_site"], int(meta["remote_rev"])

    # -- the dirty queue -----------------------------------------------------------------

    def record_marks(self, marks: Sequence[Mark]) -> None:
        """Queue observed changes: the latest change wins, ``tree`` is sticky; a path a
        scan queued (ready at once) now waits like any changed path."""
        rows = [(m.path, int(m.tree), int(m.writing), m.at, m.at, self.seq.take(), LONG_AGO)
                for m in marks]
        with self._tx() as db:
            db.executemany(
                "INSERT INTO dirty VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (path) DO UPDATE"
                " SET tree = max(tree, excluded.tree), writing = excluded.writing,"
                " first_at = CASE WHEN first_at <= ?7 THEN excluded.first_at ELSE first_at END,"
                " last_at = excluded.last_at, seq = excluded.seq",
                rows,
            )

    def mark_found(self, paths: Iterable[str], *, tree: bool = False) -> int:
        """Queue paths found to differ by a scan, ready at once; a path already queued
        keeps its state (a writer may still be at it). Returns how many were new."""
        added = 0
        for batch in _batched(paths, _BATCH):
            rows = [(p, int(tree), 0, LONG_AGO, LONG_AGO, self.seq.take()) for p in batch]
            with self._tx() as db:
                before = db.total_changes
                db.executemany("INSERT OR IGNORE INTO dirty VALUES (?, ?, ?, ?, ?, ?)", rows)
                added += db.total_changes - before
        return added

    def reset_times(self) -> None:
        """Make everything queued ready now (times of an earlier process are void)."""
        with self._tx() as db:
            db.execute("UPDATE dirty SET writing = 0, first_at = ?1, last_at = ?1", (LONG_AGO,))

    def queue_length(self) -> int:
        return int(self._query("SELECT count(*) FROM dirty")[0][0])

    def being_written(self) -> int:
        """Queued paths that a writer may still be at."""
        return int(self._query("SELECT count(*) FROM dirty WHERE writing = 1")[0][0])

    def ready(
        self, now: float, policy: Policy, limit: int, *, exclude: Collection[str] = ()
    ) -> list[DirtyItem]:
        """Queued paths (not trees) the debounce policy lets go at ``now``, the oldest
        changes first (so a long burst is sent in the order it was written). Paths in
        ``exclude`` (taken by a cycle still in flight) are passed over. A tree mark is
        never taken by a cycle: a cycle would clear it unexpanded (``ready_trees``)."""
        return self._ready(now, policy, limit, exclude, tree=False)

    def ready_trees(self, now: float, policy: Policy, limit: int) -> list[DirtyItem]:
        """Ready tree marks (directories whose content is still to be walked)."""
        return self._ready(now, policy, limit, (), tree=True)

    def _ready(
        self, now: float, policy: Policy, limit: int, exclude: Collection[str], *, tree: bool
    ) -> list[DirtyItem]:
        cut = cutoffs(now, policy)
        rows = self._query(
            "SELECT path, tree, writing, first_at, last_at, seq FROM dirty WHERE tree = ? AND"
            " ((writing = 0 AND last_at <= ?) OR (writing = 1 AND last_at <= ?)"
            " OR first_at <= ?) ORDER BY first_at, path LIMIT ?",
            (int(tree), cut.settled_before, cut.quiet_before, cut.first_before,
             limit + len(exclude)),
        )
        return [_dirty(r) for r in rows if r[0] not in exclude][:limit]

    def next_ready_at(self, policy: Policy) -> float | None:
        """When the first queued path becomes ready (None: the queue is empty)."""
        row = self._query(
            "SELECT min(last_at + CASE WHEN writing = 1 THEN ? ELSE ? END), min(first_at)"
            " FROM dirty",
            (policy.quiet, policy.settle),
        )[0]
        if row[0] is None:
            return None
        return min(float(row[0]), float(row[1]) + policy.max_delay)

    def current(self, paths: Iterable[str]) -> dict[str, DirtyItem]:
        """The queue rows of ``paths`` as they are now."""
        rows = self._rows_in("path, tree, writing, first_at, last_at, seq FROM dirty",
                             "path", paths)
        return {str(r[0]): _dirty(r) for r in rows}

    def untree(self, expanded: Iterable[tuple[str, int]]) -> None:
        """Tree marks (path, seq) were expanded into path marks: keep only each path
        itself queued (a mark made since stays a tree)."""
        with self._tx() as db:
            db.executemany("UPDATE dirty SET tree = 0 WHERE path = ? AND seq <= ?", expanded)

    def defer(self, paths: Iterable[str], at: float) -> None:
        """Queue paths again as being written (their last read was not a stable state);
        the next forced snapshot is ``max_delay`` away again."""
        rows = [(at, self.seq.take(), p) for p in paths]
        with self._tx() as db:
            db.executemany(
                "UPDATE dirty SET writing = 1, first_at = max(first_at, ?1),"
                " last_at = max(last_at, ?1), seq = ?2 WHERE path = ?3",
                rows,
            )

    def clear(self, taken: Sequence[tuple[str, int]]) -> None:
        """Remove paths whose state reached the site, unless they changed since taken."""
        with self._tx() as db:
            db.executemany("DELETE FROM dirty WHERE path = ? AND seq <= ?", taken)

    # -- what the site holds ---------------------------------------------------------------

    def remote_entry(self, path: str) -> Entry | None:
        rows = self._query(f"SELECT {_ENTRY_COLUMNS} FROM remote WHERE path = ?", (path,))  # noqa: S608
        return _entry(rows[0]) if rows else None

    def remote_entries(self, paths: Iterable[str]) -> dict[str, Entry]:
        rows = self._rows_in(f"{_ENTRY_COLUMNS} FROM remote", "path", paths)
        return {str(r[0]): _entry(r) for r in rows}

    def queued_children(self, parent: str) -> frozenset[str]:
        """The queued paths directly below ``parent`` (an index range, not a scan,
        except below the root)."""
        if not parent:
            rows = self._query("SELECT path FROM dirty WHERE instr(path, '/') = 0")
        else:
            rows = self._query(
                "SELECT path FROM dirty WHERE path > ?1 AND path < ?2"
                " AND instr(substr(path, ?3), '/') = 0",
                (parent + "/", parent + "0", len(parent) + 2),
            )
        return frozenset(str(r[0]) for r in rows)

    def children(self, parent: str) -> dict[str, tuple[Entry, CachedFile | None]]:
        """The site's entries directly below ``parent``, each with the cached digests."""
        rows = self._query(
            "SELECT r.path, r.kind, r.mode, r.mtime_ns, r.sha256, r.size, r.target,"
            " c.size, c.mtime_ns, c.ctime_ns, c.inode, c.hashed_ns, c.sha256, c.chunks"
            " FROM remote r LEFT JOIN cache c ON c.path = r.path WHERE r.parent = ?",
            (parent,),
        )
        return {str(r[0]): (_entry(r[:7]), _cached(r[7:]) if r[7] is not None else None)
                for r in rows}

    def remote_page(self, after: str | None, limit: int) -> list[Entry]:
        """Entries in path order, after ``after`` (None: from the start)."""
        rows = self._query(
            f"SELECT {_ENTRY_COLUMNS} FROM remote WHERE path > ? ORDER BY path LIMIT ?",  # noqa: S608
            (after or "", limit),
        )
        return [_entry(r) for r in rows]

    def correct_remote(
        self, updates: Sequence[tuple[str, Entry | None]], *, queue: bool = True
    ) -> None:
        """Record what the site really holds at these paths (None: nothing) and queue
        them, so that the next cycle makes the site match the directory again."""
        with self._tx() as db:
            for path, entry in updates:
                if entry is None:
                    db.execute("DELETE FROM remote WHERE path = ?", (path,))
                else:
                    db.execute("INSERT OR REPLACE INTO remote VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               _entry_row(entry))
            if queue:
                db.executemany(
                    "INSERT OR IGNORE INTO dirty VALUES (?, 0, 0, ?, ?, ?)",
                    [(p, LONG_AGO, LONG_AGO, self.seq.take()) for p, _ in updates],
                )

    def set_remote_record(self, site: str, revision: int) -> None:
        self.set({"remote_site": site, "remote_rev": revision})

    def apply_commit(
        self,
        puts: Sequence[Entry],
        deletes: Sequence[str],
        taken: Sequence[tuple[str, int]],
        meta: Mapping[str, object | None],
    ) -> None:
        """In one transaction: the site now holds ``puts`` and lacks ``deletes`` (and
        everything below them), the ``taken`` paths leave the queue unless they changed
        since, and ``meta`` (the new site record, the last commit) is written."""
        with self._tx() as db:
            for path in deletes:
                _delete_tree(db, "remote", path)
            # what a file put replaces below it (a directory's content); no put can be
            # below a file put, so these go first and the rows after, each in one call
            db.executemany("DELETE FROM remote WHERE path > ? AND path < ?",
                           [(e.path + "/", e.path + "0") for e in puts if e.kind is not Kind.DIR])
            db.executemany("INSERT OR REPLACE INTO remote VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [_entry_row(entry) for entry in puts])
            db.executemany("DELETE FROM dirty WHERE path = ? AND seq <= ?", taken)
            _set_meta(db, meta)

    # -- the read cache ----------------------------------------------------------------------

    def cached(self, path: str) -> CachedFile | None:
        rows = self._query(
            "SELECT size, mtime_ns, ctime_ns, inode, hashed_ns, sha256, chunks FROM cache"
            " WHERE path = ?",
            (path,),
        )
        return _cached(rows[0]) if rows else None

    def cached_many(self, paths: Iterable[str]) -> dict[str, CachedFile]:
        """``cached`` for many paths at once (those with no row are left out)."""
        rows = self._rows_in(f"{_CACHE_COLUMNS}, path FROM cache", "path", paths)
        return {str(r[7]): _cached(r[:7]) for r in rows}

    def cached_by_inodes(self, inodes: Iterable[int]) -> dict[int, list[CachedFile]]:
        """Every cached row of each inode, whatever its path (moved files: the caller
        picks the one whose stamp matches)."""
        out: dict[int, list[CachedFile]] = {}
        for r in self._rows_in(f"{_CACHE_COLUMNS} FROM cache", "inode", set(inodes)):
            out.setdefault(int(r[3]), []).append(_cached(r))
        return out

    def store_cached(self, items: Sequence[tuple[str, CachedFile]]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(p, c.stamp.size, c.stamp.mtime_ns, c.stamp.ctime_ns, c.stamp.inode,
                  c.hashed_ns, c.sha256, pack_chunks(c.chunks)) for p, c in items],
            )

    def prune_cache(self) -> int:
        """Forget the digests of paths neither the site holds nor the queue names (kept
        until now so that a moved file is found by its inode, not read again)."""
        with self._tx() as db:
            return db.execute(
                "DELETE FROM cache WHERE path NOT IN (SELECT path FROM remote)"
                " AND path NOT IN (SELECT path FROM dirty)"
            ).rowcount


def pack_chunks(chunks: Sequence[ChunkRef]) -> bytes:
    return b"".join(bytes.fromhex(c.digest) + c.length.to_bytes(4, "big") for c in chunks)


def unpack_chunks(raw: bytes) -> tuple[ChunkRef, ...]:
    refs, offset = [], 0
    for i in range(0, len(raw), 36):
        length = int.from_bytes(raw[i + 32 : i + 36], "big")
        refs.append(ChunkRef(raw[i : i + 32].hex(), offset, length))
        offset += length
    return tuple(refs)


def _set_meta(db: sqlite3.Connection, values: Mapping[str, object | None]) -> None:
    for key, value in values.items():
        if value is None:
            db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))


def _delete_tree(db: sqlite3.Connection, table: str, path: str) -> None:
    db.execute(f"DELETE FROM {table} WHERE path = ?", (path,))  # noqa: S608 (a table name)
    _delete_below(db, table, path)


def _delete_below(db: sqlite3.Connection, table: str, path: str) -> None:
    """Rows strictly below ``path``: byte-ordered between ``path/`` and ``path0``."""
    db.execute(f"DELETE FROM {table} WHERE path > ? AND path < ?",  # noqa: S608 (a table name)
               (path + "/", path + "0"))


def _entry_row(entry: Entry) -> tuple[object, ...]:
    return (entry.path, parent_of(entry.path), entry.kind.value, entry.mode, entry.mtime_ns,
            entry.sha256, entry.size, entry.target)


def _entry(row: Sequence[Any]) -> Entry:
    path, kind, mode, mtime_ns, sha256, size, target = row
    return Entry(path, Kind(kind), mode, mtime_ns, sha256, size, target)


def _cached(row: Sequence[Any]) -> CachedFile:
    size, mtime_ns, ctime_ns, inode, hashed_ns, sha256, chunks = row
    stamp = FileStamp(size, mtime_ns, ctime_ns, inode)
    return CachedFile(stamp, hashed_ns, sha256, unpack_chunks(bytes(chunks)))


def _dirty(row: Sequence[Any]) -> DirtyItem:
    path, tree, writing, first_at, last_at, seq = row
    return DirtyItem(path, bool(tree), bool(writing), float(first_at), float(last_at), seq)


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
