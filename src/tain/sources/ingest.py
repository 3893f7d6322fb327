"""Turning a job's staging tree into one new revision, inside the site process.

A walk of the tree (never following symlinks) gives every entry; a file whose stamp
matches the job's index keeps its SHA-256, any other is streamed once into the blob
store (which names and deduplicates it) and recorded in the catalog. The entries are
compared with the repository's head, the deletion limits are checked, and the
difference is committed as one revision (author ``source:NAME``) and published.

Index files (``Release``, ``Packages*``, ``repodata/**``...) need no second commit:
a revision becomes visible all at once, so when a client first sees a new index, every
file it names is already there; this is ftpsync's "stage two" in one atomic step.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from tain.core.chunking import ChunkRef, iter_file_chunks
from tain.core.manifest import Change, Entry, Kind, check_changes
from tain.core.paths import check_symlink_target, normalize_path
from tain.core.sourcepolicy import deletion_problem
from tain.core.sourcespec import SourceSpec
from tain.errors import InvalidPath, StorageError, UsageError
from tain.service.site import Site
from tain.sources.state import JobState, Stamp

READ_BLOCK = 1 << 20
STORE_THREADS = 8
CATALOG_BATCH = 500
Log = Callable[[str], None]


@dataclass
class Staged:
    entries: dict[str, Entry] = field(default_factory=dict)
    locations: dict[str, Path] = field(default_factory=dict)
    hashed: int = 0

    @property
    def files(self) -> int:
        return sum(e.kind is Kind.FILE for e in self.entries.values())


@dataclass(frozen=True, slots=True)
class IngestResult:
    revision: int | None  # None: nothing changed
    files: int
    bytes: int
    added: int = 0
    modified: int = 0
    deleted: int = 0


def ingest_tree(site: Site, spec: SourceSpec, state: JobState, *, message: str,
                log: Log) -> IngestResult:
    """Commit the staging tree as the repository's next revision (or nothing if equal).
    Raises ``UsageError`` when the tree is empty or the deletions exceed the limit:
    then nothing is committed and the current revision keeps serving."""
    head = {e.path: e for e in site.catalog.iter_tree(spec.repo)}
    staged = scan_tree(site, state)
    log(f"staged tree: {len(staged.entries)} entries, {staged.files} files, "
        f"{staged.hashed} hashed")
    _restore_forgotten_blobs(site, state, staged)
    changes = diff_entries(head, staged.entries)
    previous = sum(e.kind is Kind.FILE for e in head.values())
    deleted = sum(1 for p, e in head.items() if e.kind is Kind.FILE and p not in staged.entries)
    problem = deletion_problem(previous, staged.files, deleted, spec.max_delete)
    if problem:
        raise UsageError(problem, hint="check the upstream; raise max_delete if intended")
    if not changes:
        log("no change from the head revision: no new revision")
        return IngestResult(None, staged.files, 0)
    result = site.catalog.commit(spec.repo, check_changes(changes), author=f"source:{spec.name}",
                                 message=message, sign=site.sign)
    site.publish(spec.repo)
    rev = result.revision
    log(f"committed revision {rev.number}: {rev.added} added, {rev.modified} modified, "
        f"{rev.deleted} deleted")
    return IngestResult(rev.number, rev.files, rev.bytes, rev.added, rev.modified, rev.deleted)


def diff_entries(head: dict[str, Entry], staged: dict[str, Entry]) -> list[Change]:
    """Puts for new or changed entries, deletes for the top-most vanished paths."""
    changes = [Change("put", p, e) for p, e in sorted(staged.items())
               if p not in head or not _same(head[p], e)]
    gone = sorted(p for p in head if p not in staged)
    deleted: list[str] = []
    for path in gone:
        if deleted and path.startswith(deleted[-1] + "/"):
            continue  # covered by its deleted ancestor
        deleted.append(path)
    return changes + [Change("delete", p) for p in deleted]


def _same(old: Entry, new: Entry) -> bool:
    return old.same_content(new) and old.size == new.size


def scan_tree(site: Site, state: JobState) -> Staged:
    """Entries of the staging tree; files whose stamp moved are stored as blobs."""
    staged = Staged()
    pending: list[tuple[str, Path, Stamp]] = []
    for path, location, st in _walk(state.tree):
        entry = _entry(state, path, st, location)
        if entry is None:
            continue
        staged.entries[path] = entry
        staged.locations[path] = location
        if entry.kind is Kind.FILE and entry.sha256 is None:
            pending.append((path, location, Stamp(st.st_size, st.st_mtime_ns, st.st_ino)))
    for path, stamp, sha in store_files(site, pending):
        state.remember_sha256(path, stamp, sha)
        staged.entries[path] = replace(staged.entries[path], sha256=sha)
    staged.hashed = len(pending)
    state.keep_only(set(staged.locations))
    state.commit()
    return staged


def store_files(site: Site, files: list[tuple[str, Path, Stamp]]
                ) -> Iterator[tuple[str, Stamp, str]]:
    """Store files as blobs, several at once (each ends in fsyncs, and parallel writes
    hide the device's latency), and record them in the catalog in batches, before
    yielding (path, stamp, sha256) for each."""
    done: list[tuple[str, Stamp, str]] = []
    batch: list[tuple[str, int, list[ChunkRef]]] = []
    with ThreadPoolExecutor(max_workers=STORE_THREADS) as pool:
        for path, stamp, (sha, size, chunks) in pool.map(
            lambda f: (f[0], f[2], _store_file(site, f[1])), files
        ):
            batch.append((sha, size, chunks))
            done.append((path, stamp, sha))
            if len(batch) >= CATALOG_BATCH:
                site.catalog.add_blobs(batch)
                yield from done
                batch, done = [], []
    if batch:
        site.catalog.add_blobs(batch)
    yield from done


def _walk(root: Path, prefix: str = "") -> Iterator[tuple[str, Path, os.stat_result]]:
    try:
        with os.scandir(root) as listing:
            items = sorted(listing, key=lambda d: d.name)
    except OSError as exc:
        raise StorageError(f"cannot read the staging tree at {root}: {exc}") from exc
    for item in items:
        if item.name.startswith(".~tmp~") or item.name == ".rsync-partial":
            continue  # rsync's own temporary directories
        path = f"{prefix}{item.name}"
        st = item.stat(follow_symlinks=False)
        yield path, Path(item.path), st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(Path(item.path), path + "/")


def _entry(state: JobState, path: str, st: os.stat_result, location: Path) -> Entry | None:
    """The entry of one staged path; a file's SHA-256 only if the index knows it."""
    try:
        normalize_path(path)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            return Entry(path, Kind.DIR, mode, st.st_mtime_ns)
        if stat.S_ISLNK(st.st_mode):
            target = check_symlink_target(os.readlink(location), path)
            return Entry(path, Kind.SYMLINK, 0o777, st.st_mtime_ns, target=target)
    except InvalidPath:
        return None  # a name or link tain cannot store; the rest still mirrors
    if not stat.S_ISREG(st.st_mode):
        return None
    sha = state.cached_sha256(path, Stamp(st.st_size, st.st_mtime_ns, st.st_ino))
    return Entry(path, Kind.FILE, mode, st.st_mtime_ns, sha, st.st_size)


def _store_file(site: Site, location: Path) -> tuple[str, int, list[ChunkRef]]:
    """Write one staged file into the store; its digest, size and chunk index."""
    try:
        with site.store.new_blob() as writer, location.open("rb") as f:
            while block := f.read(READ_BLOCK):
                writer.write(block)
            size = writer.size
            sha = writer.commit()
        return sha, size, [ref for ref, _ in iter_file_chunks(location)]
    except OSError as exc:
        raise StorageError(f"cannot read staged file {location}: {exc}") from exc


def _restore_forgotten_blobs(site: Site, state: JobState, staged: Staged) -> None:
    """A digest from the index whose blob the site no longer holds (stored by a failed
    run, then collected by gc) is stored again from the staged file."""
    wanted = {e.sha256 for e in staged.entries.values() if e.sha256}
    missing = wanted - site.catalog.known_blobs(wanted)
    again: dict[str, tuple[str, Path, Stamp]] = {}
    for path, entry in staged.entries.items():
        if entry.sha256 in missing and entry.sha256 not in again:
            again[entry.sha256] = (path, staged.locations[path], Stamp(0, 0, 0))
    for _ in store_files(site, list(again.values())):
        pass
