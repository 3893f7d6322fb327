"""Correctness: the SHA-256 of every regular file of a tree, and a replica's differences
from its source. A tool whose replica differs is reported as failed, not timed."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

# Syncthing's folder marker (it lives in the source too, and is copied as an empty dir).
IGNORED_TOP = frozenset({".stfolder", ".stversions", ".stignore"})

TreeSums = dict[str, tuple[int, str]]
"""Relative path -> (size, SHA-256 hex)."""


def digest_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def digest_tree(root: Path, *, prefix: str = "") -> TreeSums:
    """Every regular file below ``root`` (the root itself may be a symlink, nothing below
    is followed); ``prefix`` restricts the walk to one subdirectory."""
    sums: TreeSums = {}
    base = Path(os.path.realpath(root))
    start = base / prefix if prefix else base
    if not start.is_dir():
        return sums
    stack = [start]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                rel = os.path.relpath(entry.path, base)
                if directory == base and entry.name in IGNORED_TOP:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    size = entry.stat(follow_symlinks=False).st_size
                    sums[rel] = (size, digest_file(Path(entry.path)))
                else:
                    sums[rel] = (-1, "not a regular file")
    return sums


@dataclass
class Comparison:
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def summary(self, limit: int = 5) -> str:
        if self.ok:
            return f"identical ({self.files} files)"
        parts = []
        for name, items in (("missing", self.missing), ("extra", self.extra),
                            ("different", self.different)):
            if items:
                parts.append(f"{len(items)} {name} (e.g. {', '.join(sorted(items)[:limit])})")
        return "; ".join(parts)


def compare(expected: TreeSums, actual: TreeSums) -> Comparison:
    result = Comparison(files=len(expected))
    for path, value in expected.items():
        got = actual.get(path)
        if got is None:
            result.missing.append(path)
        elif got != value:
            result.different.append(path)
    result.extra = [p for p in actual if p not in expected]
    return result
