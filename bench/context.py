"""What every case of a run shares: the scale, the seed, the work directory, the source
tree and its expected digests, the results, deadlines and a progress log."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench.results import Results
from bench.scale import Scale
from bench.treesum import TreeSums, digest_tree
from bench.workloads import FileSpec

T = TypeVar("T")


@dataclass
class Context:
    scale: Scale
    seed: int
    workdir: Path
    results: Results
    specs: list[FileSpec] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def source(self) -> Path:
        """The W1-W5 source tree: every one-shot tool syncs this same directory."""
        return self.workdir / "source"

    @property
    def long_timeout(self) -> float:
        """A deadline for an initial sync of the whole tree."""
        return 1200.0 if self.scale.name == "full" else 300.0

    @property
    def short_timeout(self) -> float:
        return 600.0 if self.scale.name == "full" else 180.0

    def expected(self) -> TreeSums:
        return digest_tree(self.source)

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[bench {elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


def rotate(items: Sequence[T], by: int) -> list[T]:
    """``items`` starting at position ``by``: the order of tools alternates case by case."""
    if not items:
        return []
    by %= len(items)
    return [*items[by:], *items[:by]]


def probe_create_rate(directory: Path, files: int = 2000, size: int = 4096) -> float:
    """Files/s the filesystem creates right now (kept until the end of the run: deleting
    them would slow the next tool, see MEASURING.md)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = b"p" * size
    start = time.monotonic()
    for i in range(files):
        with open(directory / f"p{i:05}", "wb") as f:
            f.write(data)
    return files / (time.monotonic() - start)
