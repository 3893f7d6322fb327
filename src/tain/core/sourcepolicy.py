"""The safety rules of a pull source, as values: how many deletions a run may make,
and which paths are index files (committed with, never before, the files they name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from tain.errors import UsageError

DEFAULT_INDEX_PATTERNS = (
    "Release", "Release.gpg", "InRelease", "Packages*", "Sources*", "Contents-*",
    "repodata/**", "*.db", "*.db.tar.gz", "*.files", "SHA256SUMS*", "MD5SUMS*",
)


@dataclass(frozen=True, slots=True)
class MaxDelete:
    """At most ``count`` files, or ``percent`` of the last good run's files, may go in
    one run. ``None`` for both: no limit (an emptied upstream still fails)."""

    count: int | None = None
    percent: float | None = None

    def allowed(self, previous_files: int) -> int | None:
        if self.count is not None:
            return self.count
        if self.percent is not None:
            return int(previous_files * self.percent / 100)
        return None

    def describe(self) -> str:
        if self.count is not None:
            return str(self.count)
        if self.percent is not None:
            return f"{self.percent:g}%"
        return "unlimited"


def parse_max_delete(text: str | int | None) -> MaxDelete:
    """"10%", "500", 500, "" / None / "none" (no limit)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "none")):
        return MaxDelete()
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            percent = float(raw[:-1])
            if not 0 <= percent <= 100:
                raise ValueError(raw)
            return MaxDelete(percent=percent)
        count = int(raw)
        if count < 0:
            raise ValueError(raw)
        return MaxDelete(count=count)
    except ValueError:
        raise UsageError(f"bad max-delete {raw!r}",
                         hint="a count (500) or a percentage (10%)") from None


def deletion_problem(previous_files: int, new_files: int, deleted: int,
                     limit: MaxDelete) -> str | None:
    """Why a run that would delete ``deleted`` of ``previous_files`` files (leaving
    ``new_files``) must fail, or None when it may go ahead."""
    if new_files == 0:
        return f"the upstream lists no files (the repository has {previous_files})"
    allowed = limit.allowed(previous_files)
    if allowed is not None and deleted > allowed:
        return (f"the run would delete {deleted} of {previous_files} files, more than "
                f"max-delete {limit.describe()} allows ({allowed})")
    return None


def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("(?:^|.*/)" + "".join(out) + "$")


class IndexMatcher:
    """A pattern without ``/`` matches a file name in any directory (``Packages*``);
    one with ``/`` matches a path suffix starting at a directory (``repodata/**``)."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        self._names = [p for p in patterns if "/" not in p]
        self._paths = [_compile(p) for p in patterns if "/" in p]

    def __call__(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        if any(fnmatchcase(name, p) for p in self._names):
            return True
        return any(r.match(path) for r in self._paths)
