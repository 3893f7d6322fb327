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
from dataclasses import dataclass, field
from pathlib import Path

from tain.core.manifest import Change, Entry, Kind, check_changes
from tain.core.paths import check_symlink_target, normalize_path
from tain.core.sourcepolicy import deletion_problem
from tain.core.sourcespec import SourceSpec
from tain.errors import InvalidPath, StorageError, UsageError
from tain.service.ingest import store_upload
from tain.service.site import Site
from tain.sources.state import JobState, Stamp

READ_BLOCK = 1 << 20
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
    staged = Staged()
    for path, location, st in _walk(state.tree):
        entry = _entry(site, state, staged, path, location, st)
        if entry is not None:
            staged.entries[path] = entry
            staged.locations[path] = location
    state.keep_only(set(staged.locations))
    state.commit()
    return staged


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


def _entry(site: Site, state: JobState, staged: Staged, path: str, location: Path,
           st: os.stat_result) -> Entry | None:
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
    stamp = Stamp(st.st_size, st.st_mtime_ns, st.st_ino)
    sha = state.cached_sha256(path, stamp)
    if sha is None:
        sha = _store_file(site, location)
        state.remember_sha256(path, stamp, sha)
        staged.hashed += 1
    return Entry(path, Kind.FILE, mode, st.st_mtime_ns, sha, st.st_size)


def _store_file(site: Site, location: Path) -> str:
    try:
        with location.open("rb") as f:
            blocks = iter(lambda: f.read(READ_BLOCK), b"")
            sha, _ = store_upload(site.catalog, site.store, blocks, expected=None,
                                  max_bytes=site.config.limits.max_put_bytes)
    except OSError as exc:
        raise StorageError(f"cannot read staged file {location}: {exc}") from exc
    return sha


def _restore_forgotten_blobs(site: Site, state: JobState, staged: Staged) -> None:
    """A digest from the index whose blob the site no longer holds (stored by a failed
    run, then collected by gc) is stored again from the staged file."""
    wanted = {e.sha256 for e in staged.entries.values() if e.sha256}
    missing = wanted - site.catalog.known_blobs(wanted)
    for path, entry in staged.entries.items():
        if entry.sha256 in missing:
            _store_file(site, staged.locations[path])
            missing.discard(entry.sha256)
