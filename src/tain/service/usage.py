"""Usage counted in memory: downloads, popular paths, push volume, commit latency.

Counting a download or a commit is a dict update under a lock, never a database
write. ``drain()`` hands the per-day deltas counted since the last call to whoever
flushes them into the catalog (``tain.monitor.flusher``) every few seconds; the
process-lifetime totals stay for the Prometheus collector. Popular paths are capped
per (day, repo) with space-saving counting, so memory stays bounded however many
distinct paths are asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tain.catalog.stats import DownloadCount, PathCount, PushCount
from tain.core.histogram import Histogram, day_of


@dataclass
class _Push:
    commits: int = 0
    bytes_received: int = 0
    files_changed: int = 0
    latency: Histogram = field(default_factory=Histogram)


@dataclass
class UsageBatch:
    downloads: list[DownloadCount]
    popular: list[PathCount]
    pushes: list[PushCount]

    def __bool__(self) -> bool:
        return bool(self.downloads or self.popular or self.pushes)


@dataclass
class UsageTotals:
    """Counts since the process started, per repository (for /metrics)."""

    downloads: dict[str, int] = field(default_factory=dict)
    download_bytes: dict[str, int] = field(default_factory=dict)
    push_bytes: dict[str, int] = field(default_factory=dict)
    commits: dict[str, Histogram] = field(default_factory=dict)


class Usage:
    def __init__(self, site_name: str, *, popular_cap: int = 1000,
                 clock: Callable[[], float] = time.time) -> None:
        self.site_name = site_name
        self.popular_cap = popular_cap
        self._clock = clock
        self._lock = threading.Lock()
        self._downloads: dict[tuple[str, str], list[int]] = {}
        self._popular: dict[tuple[str, str], dict[str, list[int]]] = {}
        self._pushes: dict[tuple[str, str], _Push] = {}
        self._totals = UsageTotals()

    def download(self, repo: str, path: str, size: int, *, whole: bool = True) -> None:
        """``size`` bytes of ``path`` served; ``whole`` counts one download (a range
        request adds its bytes only)."""
        key = (day_of(self._clock()), repo)
        count = 1 if whole else 0
        with self._lock:
            row = self._downloads.setdefault(key, [0, 0])
            row[0] += count
            row[1] += size
            if count:
                self._count_path(self._popular.setdefault(key, {}), path, size)
            t = self._totals
            t.downloads[repo] = t.downloads.get(repo, 0) + count
            t.download_bytes[repo] = t.download_bytes.get(repo, 0) + size

    def received(self, repo: str, size: int) -> None:
        """Push bytes received (chunk uploads, PUT bodies)."""
        key = (day_of(self._clock()), repo)
        with self._lock:
            self._pushes.setdefault(key, _Push()).bytes_received += size
            self._totals.push_bytes[repo] = self._totals.push_bytes.get(repo, 0) + size

    def committed(self, repo: str, files_changed: int, seconds: float) -> None:
        key = (day_of(self._clock()), repo)
        with self._lock:
            push = self._pushes.setdefault(key, _Push())
            push.commits += 1
            push.files_changed += files_changed
            push.latency.observe(seconds)
            self._totals.commits.setdefault(repo, Histogram()).observe(seconds)

    def drain(self) -> UsageBatch:
        """The deltas counted since the last drain (and forget them)."""
        with self._lock:
            downloads, popular, pushes = self._downloads, self._popular, self._pushes
            self._downloads, self._popular, self._pushes = {}, {}, {}
        site = self.site_name
        return UsageBatch(
            [DownloadCount(day, site, repo, n, b) for (day, repo), (n, b) in downloads.items()],
            [PathCount(day, site, repo, path, n, b)
             for (day, repo), paths in popular.items() for path, (n, b) in paths.items()],
            [PushCount(day, site, repo, p.commits, p.bytes_received, p.files_changed,
                       p.latency.total, p.latency.maximum, tuple(p.latency.counts))
             for (day, repo), p in pushes.items()],
        )

    def totals(self) -> UsageTotals:
        """A copy of the process-lifetime totals."""
        with self._lock:
            t = self._totals
            return UsageTotals(
                dict(t.downloads), dict(t.download_bytes), dict(t.push_bytes),
                {repo: Histogram(list(h.counts), h.total, h.maximum)
                 for repo, h in t.commits.items()},
            )

    def _count_path(self, paths: dict[str, list[int]], path: str, size: int) -> None:
        row = paths.get(path)
        if row is None and len(paths) >= self.popular_cap:
            least = min(paths, key=lambda p: paths[p][0])
            row = [paths.pop(least)[0], 0]  # space-saving: inherit the evicted count
            paths[path] = row
        elif row is None:
            row = paths[path] = [0, 0]
        row[0] += 1
        row[1] += size
