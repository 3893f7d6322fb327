"""The published tree: a plain directory per repository showing its head revision.

``published/<repo>`` is a symlink to one of two trees, ``.tain/<repo>/a`` and ``b``.
To publish revision N the inactive tree is brought from the revision it shows to N
by applying the diff (cost follows the change), then the symlink is replaced in one
rename. Files are hard links to blobs (copies when a link is impossible or the file
is executable, since a link shares the blob's read-only mode). A crash at any point
is repaired by the next ``publish``: every step is idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tain.catalog.base import Catalog
from tain.catalog.models import CommitResult, DiffItem, Repo
from tain.core.manifest import Entry, Kind
from tain.errors import NotFound, StorageError
from tain.service.filecalls import FILE_CALLS
from tain.store.base import BlobStore
from tain.store.durable import fsync_dir, write_json_atomically

log = logging.getLogger("tain.publish")


KEEP_DIFF_MAX = 20_000
KEEP_DIFFS = 8
"""The diffs of the ``KEEP_DIFFS`` repositories published last are kept for their
other tree, each if it has at most ``KEEP_DIFF_MAX`` paths (about 6 MB)."""


@dataclass(frozen=True)
class _Applied:
    """The last diff applied to a tree of one repository, by this process."""

    identity: tuple[int, float]
    old: int
    new: int
    changes: list[DiffItem]


class Publisher:
    def __init__(self, root: Path, catalog: Catalog, store: BlobStore) -> None:
        self.root = root
        self.catalog = catalog
        self.store = store
        self._last: dict[str, _Applied] = {}

    def publish(self, repo: str, commit: CommitResult | None = None) -> int:
        """Make ``published/<repo>`` show the head revision; returns that number.
        ``commit``, the commit that just made the head here, saves asking the catalog
        what it changed."""
        try:
            with self._locked(repo):
                return self._publish_locked(repo, commit)
        except OSError as exc:
            raise StorageError(f"cannot publish {repo} under {self.root}: {exc}") from exc

    def remove(self, repo: str) -> None:
        self._last.pop(repo, None)
        with contextlib.suppress(FileNotFoundError):
            (self.root / repo).unlink()
        shutil.rmtree(self._state_dir(repo), ignore_errors=True)

    def published_revision(self, repo: str) -> int | None:
        state = self._read_state(repo)
        return _showing(state, state.get("active"))

    def _publish_locked(self, repo: str, commit: CommitResult | None) -> int:
        row = self.catalog.get_repo(repo)
        head = row.head
        state = self._read_state(repo)
        active = state.get("active")
        link = self.root / repo
        if active and state.get(active) == head and link.is_symlink():
            return head
        target = "b" if active == "a" else "a"
        tree = self._state_dir(repo) / target
        self._bring_to(row, tree, state.get(target), head, _showing(state, active), commit)
        state[target] = head
        self._write_state(repo, state)
        self._swap(link, tree)
        state["active"] = target
        self._write_state(repo, state)
        return head

    def _bring_to(
        self, repo: Repo, tree: Path, shown: int | None, head: int, other: int | None,
        commit: CommitResult | None,
    ) -> None:
        """Bring ``tree`` from revision ``shown`` to ``head``; the other tree (the one
        published now) shows ``other``."""
        if shown is None or not tree.is_dir() or not self._diffable(repo.name, shown):
            self._rebuild(repo.name, tree, head)
            return
        for changes in self._diffs(repo, shown, head, other, commit):
            with FILE_CALLS:
                self._apply(tree, changes)

    def _diffs(
        self, repo: Repo, shown: int, head: int, other: int | None, commit: CommitResult | None,
    ) -> list[list[DiffItem]]:
        """Diffs that bring a tree from ``shown`` to ``head`` when applied in order: up
        to ``other`` (what the other tree shows), then on to ``head``. The first is the
        one the last publish asked for (kept in memory), the second is kept for the next;
        it is what ``commit`` changed when that commit made ``head`` from ``other``."""
        if other is None or not shown <= other <= head:
            return [self.catalog.diff(repo.name, shown, head)]
        last = self._last.get(repo.name)
        if last is not None and (last.identity, last.old, last.new) == (repo.identity, shown,
                                                                         other):
            to_other = last.changes
        else:
            to_other = self.catalog.diff(repo.name, shown, other) if shown != other else []
        fresh = _commit_diff(commit, other, head)
        if fresh is None:
            fresh = self.catalog.diff(repo.name, other, head) if other != head else []
        self._keep(repo.name, _Applied(repo.identity, other, head, fresh))
        return [to_other, fresh]

    def _keep(self, repo: str, applied: _Applied) -> None:
        self._last.pop(repo, None)
        if len(applied.changes) > KEEP_DIFF_MAX:
            return
        self._last[repo] = applied  # the most recent last
        while len(self._last) > KEEP_DIFFS:
            del self._last[next(iter(self._last))]

    def _apply(self, tree: Path, changes: list[DiffItem]) -> None:
        for item in sorted(changes, key=lambda c: c.path, reverse=True):
            if item.old is not None:
                stays_dir = item.new is not None and item.new.kind is Kind.DIR
                _remove(tree / item.path, keep_dir=stays_dir)
        made: set[str] = set()  # directories known to exist in ``tree`` (as strings)
        for item in sorted(changes, key=lambda c: c.path):
            if item.new is None:
                continue
            if item.old is not None or not self._link_new(tree, item.new, made):
                self._place(tree, item.new)

    def _link_new(self, tree: Path, entry: Entry, made: set[str]) -> bool:
        """The common case of a burst, kept cheap: a new file (or directory) where
        nothing stood, linked (made) in one call. False when it needs ``_place``."""
        dest = os.path.join(tree, entry.path)
        if entry.kind is Kind.DIR:
            try:
                os.mkdir(dest)
            except OSError:
                return False
            made.add(dest)
            return True
        if entry.kind is not Kind.FILE or entry.mode & 0o111:
            return False
        parent = os.path.dirname(dest)
        source = self.store.local_path(entry.sha256 or "") if parent in made or \
            os.path.isdir(parent) else None
        if source is None:
            return False
        made.add(parent)
        try:
            os.link(source, dest)
        except OSError:
            return False
        return True

    def _diffable(self, repo: str, shown: int) -> bool:
        try:
            self.catalog.resolve_rev(repo, shown)
        except NotFound:
            return shown == 0
        return True

    def _rebuild(self, repo: str, tree: Path, head: int) -> None:
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        if head == 0:
            return
        made = {tree}  # the tree is empty: nothing to remove, each parent made once
        for entry in self.catalog.iter_tree(repo, head):
            dest = tree / entry.path
            if dest.parent not in made:
                dest.parent.mkdir(parents=True, exist_ok=True)
                made.add(dest.parent)
            if entry.kind is Kind.DIR:
                dest.mkdir(exist_ok=True)
                made.add(dest)
            elif entry.kind is Kind.SYMLINK:
                os.symlink(entry.target or "", dest)
            else:
                self._place_file(dest, entry)

    def _place(self, tree: Path, entry: Entry) -> None:
        dest = tree / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind is Kind.DIR:
            if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
                dest.unlink()
            dest.mkdir(exist_ok=True)
            return
        _remove(dest, keep_dir=False)
        if entry.kind is Kind.SYMLINK:
            os.symlink(entry.target or "", dest)
            return
        self._place_file(dest, entry)

    def _place_file(self, dest: Path, entry: Entry) -> None:
        sha = entry.sha256 or ""
        source = self.store.local_path(sha)
        if source is not None and not entry.mode & 0o111:
            try:
                os.link(source, dest)
                return
            except OSError:
                pass  # another filesystem: fall back to a copy
        tmp = dest.with_name(f".{dest.name}.tain-tmp")
        with self.store.open(sha) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(tmp, entry.mode & 0o7777)
        os.utime(tmp, ns=(entry.mtime_ns, entry.mtime_ns))
        os.replace(tmp, dest)

    def _swap(self, link: Path, tree: Path) -> None:
        tmp = link.with_name(f".{link.name}.tain-swap")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.path.relpath(tree, link.parent), tmp)
        if link.exists() and not link.is_symlink():
            shutil.rmtree(link)  # a real directory left by hand: replace it
        os.replace(tmp, link)
        fsync_dir(link.parent)

    def _state_dir(self, repo: str) -> Path:
        return self.root / ".tain" / repo

    def _read_state(self, repo: str) -> dict[str, Any]:
        try:
            raw = json.loads((self._state_dir(repo) / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def _write_state(self, repo: str, state: dict[str, Any]) -> None:
        write_json_atomically(self._state_dir(repo) / "state.json", state)

    @contextlib.contextmanager
    def _locked(self, repo: str) -> Iterator[None]:
        directory = self._state_dir(repo)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _commit_diff(commit: CommitResult | None, old: int, new: int) -> list[DiffItem] | None:
    """What ``commit`` changed, if it made revision ``new`` from ``old``."""
    if commit is None or commit.changes is None:
        return None
    if commit.revision.number != new or new - 1 != old:
        return None
    return list(commit.changes)


def _showing(state: dict[str, Any], tree: object) -> int | None:
    """The revision ``state`` says ``tree`` ("a" or "b") shows; None when it says none
    (or the state file was garbled)."""
    shown = state.get(tree) if isinstance(tree, str) else None
    return shown if isinstance(shown, int) else None


def _remove(path: Path, *, keep_dir: bool) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir() and not keep_dir:
        shutil.rmtree(path)
