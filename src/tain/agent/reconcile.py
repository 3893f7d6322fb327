"""Finding what differs, without reading unchanged files.

``walk`` compares the directory with what the site holds (the journal's ``remote``
table) and the read cache: one ``lstat`` per path, two queries per directory. A path
whose state may differ is queued; a file whose stamp matches trusted cached digests
equal to the site's is not, so a restart over unchanged files costs one stat walk.
A path queued already (by events, as in a burst of new files) is not looked at: a
cycle looks at it anyway.

``catch_up`` makes the ``remote`` table describe the site the agent is about to use:
nothing to do when it already describes that site's head; the site's ``diff`` since the
recorded revision when the same site moved on (another writer, a lost answer to a
commit); the whole tree, merged in path order, for another site or a lost revision.
Every path found to differ is corrected in the table and queued.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from tain.agent.journal import CachedFile, Journal
from tain.agent.local import Observed, Source, same_state, trusted, with_digest
from tain.client import SiteClient
from tain.core.manifest import Entry, Kind, entry_from_json
from tain.core.paths import normalize_path
from tain.errors import InvalidPath, NotFound, UsageError

QUEUE_BATCH = 1000
PAGE = 5000


class Stopped(Exception):
    """The agent is shutting down."""


@dataclass
class WalkResult:
    queued: int = 0
    examined: int = 0
    dirs: int = 0
    warnings: list[str] = field(default_factory=list)
    noted: set[str] = field(default_factory=set)
    """The directories of ``walk``'s ``note`` that this walk read."""


class _Walker:
    def __init__(
        self,
        source: Source,
        journal: Journal,
        stop: threading.Event | None,
        progress: Callable[[int], None] | None,
        note: Collection[str] = (),
    ) -> None:
        self.note = note
        self.source = source
        self.journal = journal
        self.stop = stop
        self.progress = progress
        self.result = WalkResult()
        self.pending: list[str] = []

    def run(self, top: str) -> WalkResult:
        if top:
            self._queue(top)
            observed = self.source.observe(top)
            if observed.entry is None or observed.entry.kind is not Kind.DIR:
                return self._done()
        elif not self.source.root.is_dir():
            raise UsageError(f"the source directory {self.source.root} is gone")
        stack = [top]
        while stack:
            if self.stop is not None and self.stop.is_set():
                raise Stopped
            stack.extend(reversed(self._directory(stack.pop())))
        return self._done()

    def _done(self) -> WalkResult:
        self._flush()
        return self.result

    def _directory(self, rel: str) -> list[str]:
        """Queue what differs directly below ``rel``; return its subdirectories."""
        self.result.dirs += 1
        if rel in self.note:
            self.result.noted.add(rel)
        known = self.journal.children(rel)
        queued = self.journal.queued_children(rel)
        try:
            with os.scandir(self.source.location(rel)) as it:
                children = sorted(it, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            if rel:
                self._queue(rel)
            return []
        except OSError as exc:
            self.result.warnings.append(f"{rel or '.'}: cannot read directory ({exc.strerror})")
            return []
        subdirs, seen = [], set()
        for child in children:
            path = self._path(rel, child.name)
            if path is None:
                continue
            try:
                is_dir = child.is_dir(follow_symlinks=False)
                if self.source.skipped(path, is_dir=is_dir):
                    continue
                if path in queued:  # a cycle looks at it anyway: no need to stat it here
                    seen.add(path)
                    if is_dir:
                        subdirs.append(path)
                    continue
                st = child.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.result.warnings.append(f"{path}: cannot stat ({exc.strerror})")
                seen.add(path)
                continue
            seen.add(path)
            observed = self.source.observe_stat(path, st)
            if observed.warning:
                self.result.warnings.append(observed.warning)
            remote, cached = known.get(path, (None, None))
            if not _clean(observed, remote, cached):
                self._queue(path)
            if is_dir:
                subdirs.append(path)
        for path in known.keys() - seen:
            self._queue(path)
        self._count(len(children))
        return subdirs

    def _path(self, rel: str, name: str) -> str | None:
        raw = f"{rel}/{name}" if rel else name
        try:
            return normalize_path(raw)
        except InvalidPath as exc:
            self.result.warnings.append(f"{raw!r}: {exc.message}; not mirrored")
            return None

    def _queue(self, path: str) -> None:
        self.pending.append(path)
        if len(self.pending) >= QUEUE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.result.queued += self.journal.mark_found(self.pending)
            self.pending = []

    def _count(self, n: int) -> None:
        self.result.examined += n
        if self.progress is not None:
            self.progress(n)


def _clean(observed: Observed, remote: Entry | None, cached: CachedFile | None) -> bool:
    """True when the site holds what is there (files: by trusted cached digests)."""
    if observed.unknown:
        return True
    entry = observed.entry
    if entry is None or observed.stamp is None:
        return same_state(entry, remote)
    if cached is None or not trusted(cached, observed.stamp):
        return False
    return same_state(with_digest(entry, cached.sha256), remote)


def walk(
    source: Source,
    journal: Journal,
    top: str = "",
    *,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
    note: Collection[str] = (),
) -> WalkResult:
    """Queue every path at or below ``top`` ("" = all) that may differ from the site;
    the result names the directories of ``note`` it read (``noted``)."""
    return _Walker(source, journal, stop, progress, note).run(top)


@dataclass(frozen=True, slots=True)
class CatchUp:
    head: int
    how: str  # "same", "diff" or "full"
    corrected: int


def catch_up(
    client: SiteClient, repo: str, journal: Journal, site: str,
    *, stop: threading.Event | None = None,
) -> CatchUp:
    """Make the journal describe ``site``'s head of ``repo``; queue what differs."""
    head = int(client.get_repo(repo)["head"])
    record = journal.remote_record()
    if record == (site, head):
        return CatchUp(head, "same", 0)
    if record is not None and record[0] == site and 0 < record[1] < head:
        try:
            corrected = _apply_diff(client, repo, journal, record[1], head)
        except NotFound:  # the recorded revision was dropped by retention
            pass
        else:
            journal.set_remote_record(site, head)
            return CatchUp(head, "diff", corrected)
    corrected = _merge_tree(client, repo, journal, head, stop)
    journal.set_remote_record(site, head)
    return CatchUp(head, "full", corrected)


def _apply_diff(client: SiteClient, repo: str, journal: Journal, old: int, head: int) -> int:
    changes = client.diff(repo, old, head).get("changes") or []
    updates: list[tuple[str, Entry | None]] = []
    for item in changes:
        new = item.get("new")
        updates.append((normalize_path(str(item["path"])), entry_from_json(new) if new else None))
    for start in range(0, len(updates), QUEUE_BATCH):
        journal.correct_remote(updates[start : start + QUEUE_BATCH])
    return len(updates)


def _merge_tree(
    client: SiteClient, repo: str, journal: Journal, head: int, stop: threading.Event | None
) -> int:
    """Walk the site's tree and the journal's in path order; correct every difference."""
    site_entries = client.iter_tree(repo, rev=head) if head else iter(())
    mine, theirs = _journal_entries(journal), iter(site_entries)
    a, b = next(mine, None), next(theirs, None)
    updates: list[tuple[str, Entry | None]] = []
    corrected = 0
    while a is not None or b is not None:
        if stop is not None and stop.is_set():
            raise Stopped
        if a is not None and (b is None or a.path < b.path):
            updates.append((a.path, None))
            a = next(mine, None)
        elif b is not None and (a is None or b.path < a.path):
            updates.append((b.path, b))
            b = next(theirs, None)
        elif a is not None and b is not None:
            if not same_state(a, b):
                updates.append((b.path, b))
            a, b = next(mine, None), next(theirs, None)
        if len(updates) >= QUEUE_BATCH:
            journal.correct_remote(updates)
            corrected += len(updates)
            updates = []
    journal.correct_remote(updates)
    return corrected + len(updates)


def _journal_entries(journal: Journal) -> Iterator[Entry]:
    after: str | None = None
    while True:
        page = journal.remote_page(after, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].path
