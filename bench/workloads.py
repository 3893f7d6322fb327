"""Seeded workloads: the W1 tree and the changes of W3-W6.

Planning is pure (a seed and a ``Scale`` in, file specs out) so that two runs, or two
machines, build byte-identical trees; writing turns a plan into files. File contents
are pseudo-random (incompressible, like the packages and images a mirror mostly holds)
and derived from a per-file seed, so no two files share content and no tool can win by
deduplicating.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.scale import KIB, MIB, Scale

PIECE = 1 * MIB
FILES_PER_DIR = 50
EDIT_BYTES = 4 * KIB
BURST_MIN = 1 * KIB
BURST_MAX = 16 * KIB
BURST_FILES_PER_DIR = 250
W4_FILE = "large/big00.iso"


@dataclass(frozen=True)
class FileSpec:
    path: str
    size: int
    seed: int


@dataclass(frozen=True)
class Edit:
    """Overwrite ``length`` bytes at ``offset`` with bytes drawn from ``seed``."""

    path: str
    offset: int
    length: int
    seed: int


def content(seed: int, size: int) -> Iterator[bytes]:
    """The bytes of a file, in pieces of at most 1 MiB."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(PIECE, left)
        yield rng.randbytes(n)
        left -= n


def small_file_path(top: int, index: int) -> str:
    """``dTT/sAA/tBB/fNNNNN.bin``: 50 files a leaf directory, two levels of nesting."""
    leaf = index // FILES_PER_DIR
    return f"d{top:02}/s{leaf // 10:02}/t{leaf % 10:02}/f{index:05}.bin"


def plan_tree(scale: Scale, seed: int) -> list[FileSpec]:
    """The W1 tree: small files over ``scale.top_dirs`` top directories, then large files."""
    rng = random.Random(seed)
    specs = []
    per_top = scale.small_files // scale.top_dirs
    for top in range(scale.top_dirs):
        for index in range(per_top):
            size = rng.randint(scale.small_min, scale.small_max)
            specs.append(FileSpec(small_file_path(top, index), size, rng.getrandbits(63)))
    for number, size in enumerate(scale.large_sizes):
        specs.append(FileSpec(f"large/big{number:02}.iso", size, rng.getrandbits(63)))
    return specs


def write_files(root: Path, specs: Iterable[FileSpec]) -> int:
    """Write every spec below ``root``; returns the number of bytes written."""
    written = 0
    made: set[Path] = set()
    for spec in specs:
        target = root / spec.path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        with target.open("wb") as f:
            for piece in content(spec.seed, spec.size):
                f.write(piece)
        written += spec.size
    return written


def plan_edits(specs: list[FileSpec], fraction: float, seed: int) -> list[Edit]:
    """W3: ``fraction`` of all files, chosen among the small ones, each edited in place."""
    rng = random.Random(seed)
    small = [s for s in specs if not s.path.startswith("large/")]
    count = max(1, round(len(specs) * fraction))
    edits = []
    for spec in sorted(rng.sample(small, count), key=lambda s: s.path):
        length = min(EDIT_BYTES, spec.size // 2)
        offset = rng.randint(0, spec.size - length)
        edits.append(Edit(spec.path, offset, length, rng.getrandbits(63)))
    return edits


def apply_edits(root: Path, edits: Iterable[Edit]) -> None:
    for edit in edits:
        with (root / edit.path).open("r+b") as f:
            f.seek(edit.offset)
            f.write(random.Random(edit.seed).randbytes(edit.length))


def insert_at_start(path: Path, data: bytes = b"!") -> None:
    """W4a: insert bytes at offset 0 (written to a temporary name, then renamed)."""
    tmp = path.with_name(path.name + ".bench-tmp")
    with path.open("rb") as src, tmp.open("wb") as dst:
        dst.write(data)
        while piece := src.read(PIECE):
            dst.write(piece)
    os.replace(tmp, path)


def append_random(path: Path, size: int, seed: int) -> None:
    """W4b: append ``size`` new bytes."""
    with path.open("ab") as f:
        for piece in content(seed, size):
            f.write(piece)


def plan_burst(count: int, seed: int, prefix: str = "burst") -> list[FileSpec]:
    """W6: ``count`` new small files, 250 a directory (directories are new as well)."""
    rng = random.Random(seed)
    return [
        FileSpec(
            f"{prefix}/b{i // BURST_FILES_PER_DIR:02}/n{i:05}.bin",
            rng.randint(BURST_MIN, BURST_MAX),
            rng.getrandbits(63),
        )
        for i in range(count)
    ]
