"""What a path in the source directory is now, as a repository entry.

Files get their SHA-256 from the read cache when their stamp (size, mtime, ctime,
inode) did not move, and the cached digests are trusted only if they were read long
enough after the file's last change that a later write must get a later ctime: a
write in the same timestamp tick as the read would otherwise leave a stale digest
looking valid (git's "racy clean"). File systems with fine timestamps tick every few
milliseconds (``FINE_RACY_NS``); a ctime on a whole second suggests one that keeps
whole seconds (``COARSE_RACY_NS``). A racy file is simply read once more.
Symlinks are kept as links, never followed; one pointing outside the directory, a
socket, a fifo or a device is not stored (with a warning).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tain.agent.ignore import IgnoreRules
from tain.agent.journal import CachedFile
from tain.core.manifest import Entry, Kind
from tain.core.paths import check_symlink_target
from tain.errors import InvalidPath
from tain.push.cache import FileStamp

FINE_RACY_NS = 100_000_000
COARSE_RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Observed:
    """A path's local state. ``entry`` None: nothing storable is there. ``unknown``:
    it could not be examined (leave the site as it is). Files carry their ``stamp``
    and, until read, no SHA-256."""

    path: str
    entry: Entry | None
    stamp: FileStamp | None = None
    warning: str | None = None
    unknown: bool = False


class Source:
    """The source directory, its ignore rules and the paths it must never send."""

    def __init__(self, root: Path, rules: IgnoreRules, excluded: tuple[str, ...] = ()) -> None:
        self.root = root
        self.rules = rules
        self.excluded = excluded
        self._prefix = f"{root}/"
        self._excluded_names = frozenset(excluded)
        self._excluded_below = tuple(f"{e}/" for e in excluded)

    def skipped(self, path: str, *, is_dir: bool) -> bool:
        """Ignored by the rules, or the agent's own state (asked for every event)."""
        if path in self._excluded_names or path.startswith(self._excluded_below):
            return True
        return self.rules.ignored(path, is_dir=is_dir)

    def location(self, path: str) -> str:
        """Where ``path`` is on disk: a str, made for every path the agent looks at
        (a ``Path`` costs several times as much to build and to pass to ``os``)."""
        return self._prefix + path

    def observe(self, path: str) -> Observed:
        try:
            st = os.lstat(self.location(path))
        except (FileNotFoundError, NotADirectoryError):
            return Observed(path, None)
        except OSError as exc:
            return Observed(path, None, warning=f"{path}: cannot stat ({exc.strerror})",
                            unknown=True)
        return self.observe_stat(path, st)

    def observe_stat(self, path: str, st: os.stat_result) -> Observed:
        if self.skipped(path, is_dir=stat.S_ISDIR(st.st_mode)):
            return Observed(path, None)
        mode = st.st_mode & 0o7777
        if stat.S_ISDIR(st.st_mode):
            return Observed(path, Entry(path, Kind.DIR, mode, st.st_mtime_ns))
        if stat.S_ISREG(st.st_mode):
            entry = Entry(path, Kind.FILE, mode, st.st_mtime_ns, None, st.st_size)
            return Observed(path, entry, FileStamp.of(st))
        if stat.S_ISLNK(st.st_mode):
            return self._symlink(path, st)
        return Observed(path, None, warning=f"{path}: not a file, directory or symlink; skipped")

    def _symlink(self, path: str, st: os.stat_result) -> Observed:
        try:
            target = os.readlink(self.location(path))
            target.encode("utf-8")
            check_symlink_target(target, path)
        except FileNotFoundError:
            return Observed(path, None)
        except (OSError, UnicodeEncodeError, InvalidPath) as exc:
            reason = getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)
            return Observed(path, None, warning=f"{path}: {reason}; symlink not mirrored")
        mode = st.st_mode & 0o7777
        return Observed(path, Entry(path, Kind.SYMLINK, mode, st.st_mtime_ns, target=target))


def racy_window(stamp: FileStamp) -> int:
    """How long after a file's last change its digests must have been read."""
    return COARSE_RACY_NS if stamp.ctime_ns % 1_000_000_000 == 0 else FINE_RACY_NS


def trusted(cached: CachedFile | None, stamp: FileStamp) -> bool:
    """True when the cached digests describe the file with this stamp (and the chunk
    list covers the whole file, so the blob can be rebuilt from it)."""
    return (
        cached is not None
        and cached.stamp == stamp
        and cached.hashed_ns - stamp.ctime_ns >= racy_window(stamp)
        and sum(c.length for c in cached.chunks) == stamp.size
    )


def with_digest(entry: Entry, sha256: str) -> Entry:
    return Entry(entry.path, entry.kind, entry.mode, entry.mtime_ns, sha256, entry.size)


def same_state(local: Entry | None, remote: Entry | None) -> bool:
    """True when the site holds exactly ``local`` (both None: neither has the path)."""
    if local is None or remote is None:
        return local is remote
    if local.kind is Kind.FILE and local.size != remote.size:
        return False
    return local.kind == remote.kind and local.same_content(remote)
