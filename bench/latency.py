"""W6: change-propagation latency. A writer thread creates a burst of new files as fast
as it can and notes when each one was closed; the main thread polls the replica every
``POLL_S`` and notes when each file appears there with its full size (every tool here
makes a file visible under its final name only when it is complete: rsync and Syncthing
rename a temporary file, tain switches its published tree in one rename). A file's
latency is seen - closed; the poll interval bounds its resolution."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.workloads import FileSpec, write_files

POLL_S = 0.05


@dataclass
class LatencyRun:
    latencies_s: list[float] = field(default_factory=list)
    missing: int = 0
    write_s: float = 0.0
    """How long the writer took for the whole burst."""
    last_arrival_s: float = 0.0
    """From the first write to the last arrival."""
    poll_s: float = POLL_S
    after_burst_error: str = ""


def _pending_dirs(specs: list[FileSpec]) -> dict[str, dict[str, int]]:
    dirs: dict[str, dict[str, int]] = {}
    for spec in specs:
        parent, _, name = spec.path.rpartition("/")
        dirs.setdefault(parent, {})[name] = spec.size
    return dirs


def burst_and_watch(
    source: Path,
    replica: Path,
    specs: list[FileSpec],
    *,
    timeout: float,
    after_burst: Callable[[], None] | None = None,
) -> LatencyRun:
    """Write ``specs`` below ``source``; time each one's arrival below ``replica``
    (which may be a symlink that the tool swaps). Stops at ``timeout`` seconds."""
    written: dict[str, float] = {}
    run = LatencyRun()

    def writer() -> None:
        for spec in specs:
            write_files(source, [spec])
            written[spec.path] = time.monotonic()
        run.write_s = time.monotonic() - start
        if after_burst is not None:
            try:
                after_burst()
            except Exception as exc:  # reported with the result, not raised in a thread
                run.after_burst_error = f"{type(exc).__name__}: {exc}"

    pending = _pending_dirs(specs)
    seen: dict[str, float] = {}
    start = time.monotonic()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    deadline = start + timeout
    while pending and time.monotonic() < deadline:
        time.sleep(POLL_S)
        now = time.monotonic()
        for parent in list(pending):
            _poll_dir(replica, parent, pending[parent], seen, now)
            if not pending[parent]:
                del pending[parent]
    thread.join(timeout=max(1.0, deadline - time.monotonic()))
    for path, arrived in seen.items():
        closed = written.get(path)
        if closed is not None:
            run.latencies_s.append(arrived - closed)
    run.missing = len(specs) - len(run.latencies_s)
    if seen:
        run.last_arrival_s = max(seen.values()) - start
    return run


def _poll_dir(
    replica: Path, parent: str, wanted: dict[str, int], seen: dict[str, float], now: float
) -> None:
    try:
        with os.scandir(replica / parent) as it:
            for entry in it:
                size = wanted.get(entry.name)
                if size is None:
                    continue
                try:
                    complete = entry.stat(follow_symlinks=False).st_size == size
                except OSError:
                    continue
                if complete:
                    seen[f"{parent}/{entry.name}"] = now
                    del wanted[entry.name]
    except OSError:
        return
