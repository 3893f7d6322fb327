"""Scanning a local directory into repository entries.

Files get their SHA-256 and chunk list from one read (through the hash cache), symlinks
are kept as links and never followed, directories become ``Kind.DIR`` entries. Whatever
tain cannot or must not store (unreadable files, names that are not valid paths, links
pointing outside the directory, sockets, fifos, devices) is skipped with a warning.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from tain.core.manifest import Entry, Kind
from tain.core.paths import check_symlink_target, normalize_path
from tain.errors import InvalidPath, UsageError
from tain.push.cache import FileStamp, HashCache
from tain.push.progress import NullProgress, ProgressSink
from tain.push.snapshot import HASH_ATTEMPTS as HASH_ATTEMPTS
from tain.push.snapshot import FileChanged as FileChanged
from tain.push.snapshot import FileChunks, chunk_file


@dataclass
class ScanResult:
    entries: dict[str, Entry] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    """Absolute location of every regular file, by repository path."""
    warnings: list[str] = field(default_factory=list)
    bytes_hashed: int = 0
    files_scanned: int = 0


def hash_file(path: str, location: Path, *, attempts: int = HASH_ATTEMPTS) -> FileChunks:
    """SHA-256 and chunk list of a file from one read, read again while it changes: a
    new file is then never read a second time to be chunked for its upload."""
    return chunk_file(path, location, attempts=attempts)


class _Scanner:
    def __init__(
        self, root: Path, cache: HashCache, progress: ProgressSink, exclude: set[Path]
    ) -> None:
        self.root = root
        self.cache = cache
        self.progress = progress
        self.exclude = exclude
        self.result = ScanResult()

    def run(self) -> ScanResult:
        stack = [("", self.root)]
        while stack:
            rel, location = stack.pop()
            stack.extend(reversed(self._scan_dir(rel, location)))
        self.cache.keep_only(set(self.result.files))
        self.cache.save()
        return self.result

    def _scan_dir(self, rel: str, location: Path) -> list[tuple[str, Path]]:
        """Add the children of one directory; return its subdirectories to descend into."""
        try:
            with os.scandir(location) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self._warn(f"{rel or '.'}: cannot read directory ({exc.strerror}); skipped")
            self.result.entries.pop(rel, None)
            return []
        subdirs = []
        for child in children:
            path = self._repo_path(rel, child.name)
            if path is None or Path(child.path) in self.exclude:
                continue
            if self._add(path, Path(child.path)):
                subdirs.append((path, Path(child.path)))
            self.progress.advance()
        return subdirs

    def _repo_path(self, rel: str, name: str) -> str | None:
        raw = f"{rel}/{name}" if rel else name
        try:
            return normalize_path(raw)
        except InvalidPath as exc:
            self._warn(f"{raw!r}: {exc.message}; skipped")
            return None

    def _add(self, path: str, location: Path) -> bool:
        """Add one entry; True when it is a directory to descend into."""
        try:
            st = location.lstat()
        except OSError as exc:
            self._warn(f"{path}: cannot stat ({exc.strerror}); skipped")
            return False
        mode = st.st_mode & 0o7777
        if stat.S_ISDIR(st.st_mode):
            self.result.entries[path] = Entry(path, Kind.DIR, mode, st.st_mtime_ns)
            return True
        if stat.S_ISLNK(st.st_mode):
            self._add_symlink(path, location, st)
        elif stat.S_ISREG(st.st_mode):
            self._add_file(path, location, st)
        else:
            self._warn(f"{path}: not a file, directory or symlink; skipped")
        return False

    def _add_symlink(self, path: str, location: Path, st: os.stat_result) -> None:
        try:
            target = os.readlink(location)
            target.encode("utf-8")
            check_symlink_target(target, path)
        except (OSError, UnicodeEncodeError, InvalidPath) as exc:
            self._warn(f"{path}: {_reason(exc)}; symlink skipped")
            return
        mode = st.st_mode & 0o7777
        self.result.entries[path] = Entry(path, Kind.SYMLINK, mode, st.st_mtime_ns, target=target)

    def _add_file(self, path: str, location: Path, st: os.stat_result) -> None:
        cached = self.cache.lookup(path, FileStamp.of(st))
        if cached is not None:
            sha256, mode, mtime_ns, size = (
                cached.sha256, st.st_mode & 0o7777, st.st_mtime_ns, st.st_size
            )
        else:
            try:
                snap = hash_file(path, location)
            except (OSError, FileChanged) as exc:
                self._warn(f"{path}: cannot read ({_reason(exc)}); skipped")
                return
            self.result.bytes_hashed += snap.stamp.size
            self.cache.store(path, snap.stamp, snap.sha256, snap.chunks)
            sha256, mode, mtime_ns, size = (
                snap.sha256, snap.mode, snap.stamp.mtime_ns, snap.stamp.size
            )
        self.result.entries[path] = Entry(path, Kind.FILE, mode, mtime_ns, sha256, size)
        self.result.files[path] = location
        self.result.files_scanned += 1

    def _warn(self, message: str) -> None:
        self.result.warnings.append(message)


def scan_directory(
    directory: Path,
    *,
    cache: HashCache | None = None,
    progress: ProgressSink | None = None,
    exclude: Collection[Path] = (),
) -> ScanResult:
    """Every entry below ``directory`` (not the directory itself), by repository path."""
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    root = directory.resolve()
    progress = progress or NullProgress()
    excluded = {p.resolve() for p in exclude}
    progress.start("scan")
    try:
        if cache is not None:
            return _Scanner(root, cache, progress, excluded).run()
        with HashCache() as memory:
            return _Scanner(root, memory, progress, excluded).run()
    finally:
        progress.finish()


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(getattr(exc, "message", exc))
