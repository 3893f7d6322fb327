"""The sizes of a run. ``FULL`` follows issue #6 (about 1 GiB, fits in ~30 minutes on the
2-core machine); ``QUICK`` keeps every workload but shrinks it to a few minutes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class Scale:
    name: str
    small_files: int
    """Small files of the W1 tree, spread evenly over ``top_dirs`` nested directories."""
    small_min: int
    small_max: int
    top_dirs: int
    """W5 renames one top directory: it holds ``small_files / top_dirs`` files."""
    large_sizes: tuple[int, ...]
    """The first one is the W4 file (1 byte inserted at 0, then ``append_bytes`` appended)."""
    edit_fraction: float
    append_bytes: int
    burst_files: int
    big_download: int
    small_requests: int
    small_request_paths: int
    concurrency: int
    resync_repeats: int
    download_repeats: int
    redirect_requests: int
    """W8: GET /dl/... requests per h2load run (at ``concurrency`` clients)."""
    mirror_small_rounds: int
    """W9: rounds of one small change committed on the primary."""
    mirror_bulk_files: int
    mirror_bulk_rounds: int
    """W9: rounds of ``mirror_bulk_files`` new files committed at once."""
    source_files: int
    """W10: files of the rsync upstream a pull source copies."""
    target_rounds: int = 3
    """T1: initial syncs of the W1 tree per tool, alternating (medians)."""
    agent_files: int = 100_000
    """T3: files in the tree whose agent memory is measured (the target is at 1,000,000)."""

    @property
    def rename_files(self) -> int:
        return self.small_files // self.top_dirs

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Scale(
    name="full",
    small_files=20_000,
    small_min=1 * KIB,
    small_max=64 * KIB,
    top_dirs=4,
    large_sizes=(100 * MIB, 20 * MIB, 30 * MIB, 40 * MIB, 50 * MIB, 60 * MIB, 70 * MIB,
                 80 * MIB, 90 * MIB, 64 * MIB),
    edit_fraction=0.01,
    append_bytes=1 * MIB,
    burst_files=5_000,
    big_download=1 * GIB,
    small_requests=10_000,
    small_request_paths=2_000,
    concurrency=32,
    resync_repeats=3,
    download_repeats=3,
    redirect_requests=10_000,
    mirror_small_rounds=20,
    mirror_bulk_files=1_000,
    mirror_bulk_rounds=3,
    source_files=5_000,
)

QUICK = Scale(
    name="quick",
    small_files=2_000,
    small_min=1 * KIB,
    small_max=64 * KIB,
    top_dirs=4,
    large_sizes=(20 * MIB, 20 * MIB),
    edit_fraction=0.01,
    append_bytes=1 * MIB,
    burst_files=500,
    big_download=256 * MIB,
    small_requests=1_000,
    small_request_paths=500,
    concurrency=32,
    resync_repeats=2,
    download_repeats=2,
    redirect_requests=2_000,
    mirror_small_rounds=5,
    mirror_bulk_files=1_000,
    mirror_bulk_rounds=1,
    source_files=1_000,
    agent_files=20_000,
)
