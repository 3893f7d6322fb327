"""W1-W5: one-shot syncs of the same source tree by tain push, rsync and Syncthing.

Each case changes the source once, then every tool brings its own replica up to date,
in an order that rotates from case to case, each after an (untimed) sync(2) so that no
tool pays for the writeback of what was written before its turn; each replica is then
checked file by file (SHA-256) and a tool whose replica differs is reported as failed,
not timed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.context import Context, probe_create_rate, rotate
from bench.measure import ClientRun, DaemonUsage, LoopbackMeter, ProcSampler
from bench.peers.rsync import RsyncDaemon
from bench.peers.syncthing import SyncthingPair
from bench.peers.tain import TainSite
from bench.results import Record, cost_metrics
from bench.scale import MIB
from bench.stats import median
from bench.treesum import TreeSums, compare, digest_tree
from bench.workloads import (
    W4_FILE,
    append_random,
    apply_edits,
    insert_at_start,
    plan_edits,
    write_files,
)


@dataclass
class SyncOutcome:
    client: ClientRun | None
    payload_bytes: int | None
    details: dict[str, Any] = field(default_factory=dict)


class SyncTool(Protocol):
    tool: str
    replica: Path

    def server_pids(self) -> list[int]: ...

    def sync(self, *, first: bool, files: int, timeout: float) -> SyncOutcome: ...


class RsyncSync:
    tool = "rsync"

    def __init__(self, daemon: RsyncDaemon, source: Path, module: str, replica: Path) -> None:
        self.daemon, self.source, self.module, self.replica = daemon, source, module, replica

    def server_pids(self) -> list[int]:
        return [self.daemon.daemon.pid]

    def sync(self, *, first: bool, files: int, timeout: float) -> SyncOutcome:
        run, stats = self.daemon.sync(self.source, self.module, timeout=timeout)
        return SyncOutcome(run, stats.sent + stats.received,
                           {"literal_bytes": stats.literal, "matched_bytes": stats.matched})


class TainPushSync:
    tool = "tain push"

    def __init__(self, site: TainSite, source: Path) -> None:
        self.site, self.source = site, source
        self.replica = site.published()

    def server_pids(self) -> list[int]:
        return [self.site.daemon.pid]

    def sync(self, *, first: bool, files: int, timeout: float) -> SyncOutcome:
        run, body = self.site.push(self.source, timeout=timeout)
        keys = ("revision", "added", "changed", "deleted", "bytes_hashed", "chunks_sent")
        return SyncOutcome(run, int(body["bytes_sent"]), {k: body.get(k) for k in keys})


class SyncthingSync:
    tool = "syncthing"

    def __init__(self, pair: SyncthingPair, folder: str) -> None:
        self.pair, self.folder = pair, folder
        self.replica = pair.folders[folder].replica

    def server_pids(self) -> list[int]:
        return self.pair.pids

    def sync(self, *, first: bool, files: int, timeout: float) -> SyncOutcome:
        before = self.pair.bytes()
        if first:
            self.pair.unpause(self.folder)
        else:
            self.pair.scan(self.folder)
        self.pair.wait_in_sync(self.folder, files, timeout=timeout)
        return SyncOutcome(None, self.pair.bytes() - before)


def measure_sync(
    tool: SyncTool, *, first: bool, files: int, timeout: float
) -> tuple[float, SyncOutcome, DaemonUsage, int]:
    with LoopbackMeter() as lo, ProcSampler(tool.server_pids()) as sampler:
        start = time.monotonic()
        outcome = tool.sync(first=first, files=files, timeout=timeout)
        wall = time.monotonic() - start
    return wall, outcome, sampler.usage, lo.bytes


class SyncCases:
    def __init__(self, ctx: Context, tools: list[SyncTool]) -> None:
        self.ctx = ctx
        self.tools = tools
        self.broken: dict[str, str] = {}

    def run(self) -> None:
        steps: list[tuple[str, str, Callable[[], None] | None]] = [
            ("W1", "initial sync", None),
            ("W2", "re-sync, nothing changed", None),
            ("W3", "1% of files edited in place", self._edit),
            ("W4", "1 byte inserted at offset 0 of the large file", self._insert),
            ("W4", "1 MiB appended to the large file", self._append),
            ("W5", "rename of a directory", self._rename),
        ]
        for number, (workload, case, change) in enumerate(steps):
            if change is not None:
                change()
            expected = self.ctx.expected()
            repeats = self.ctx.scale.resync_repeats if workload == "W2" else 1
            self._case(workload, case, expected, order=number, repeats=repeats)

    def _edit(self) -> None:
        edits = plan_edits(self.ctx.specs, self.ctx.scale.edit_fraction, self.ctx.seed + 3)
        apply_edits(self.ctx.source, edits)
        self.ctx.log(f"W3: edited {len(edits)} files in place")

    def _insert(self) -> None:
        insert_at_start(self.ctx.source / W4_FILE)

    def _append(self) -> None:
        append_random(self.ctx.source / W4_FILE, self.ctx.scale.append_bytes, self.ctx.seed + 4)

    def _rename(self) -> None:
        (self.ctx.source / "d01").rename(self.ctx.source / "d01-renamed")

    def _case(
        self, workload: str, case: str, expected: TreeSums, *, order: int, repeats: int
    ) -> None:
        runs: dict[str, list[dict[str, float]]] = {t.tool: [] for t in self.tools}
        details: dict[str, list[dict[str, Any]]] = {t.tool: [] for t in self.tools}
        for repeat in range(repeats):
            for tool in rotate(self.tools, order + repeat):
                if tool.tool in self.broken:
                    continue
                result = self._one(tool, workload, expected, first=workload == "W1")
                if result is None:
                    continue
                runs[tool.tool].append(result[0])
                details[tool.tool].append(result[1])
        for tool in self.tools:
            self._record(workload, case, tool.tool, runs[tool.tool], details[tool.tool])

    def _one(
        self, tool: SyncTool, workload: str, expected: TreeSums, *, first: bool
    ) -> tuple[dict[str, float], dict[str, Any]] | None:
        ctx = self.ctx
        timeout = ctx.long_timeout if first else ctx.short_timeout
        extra: dict[str, float] = {}
        if first:
            probe = ctx.workdir / "probe" / tool.tool.replace(" ", "-")
            extra["fs_create_files_per_s"] = round(probe_create_rate(probe), 1)
        ctx.log(f"{workload}: {tool.tool} ...")
        os.sync()  # untimed: nobody pays for the writeback of data written before its turn
        try:
            wall, outcome, usage, lo = measure_sync(tool, first=first, files=len(expected),
                                                    timeout=timeout)
        except Exception as exc:
            self.broken[tool.tool] = f"{workload}: {type(exc).__name__}: {exc}"
            ctx.log(f"{workload}: {tool.tool} FAILED: {self.broken[tool.tool]}")
            return None
        check = compare(expected, digest_tree(tool.replica))
        if not check.ok:
            self.broken[tool.tool] = f"{workload}: wrong copy: {check.summary()}"
            ctx.log(f"{workload}: {tool.tool} FAILED: {self.broken[tool.tool]}")
            return None
        metrics = cost_metrics(wall, outcome.client, usage, lo)
        if outcome.payload_bytes is not None:
            metrics["payload_bytes"] = outcome.payload_bytes
        if first:
            size = sum(s for s, _ in expected.values())
            metrics["files_per_s"] = round(len(expected) / wall, 1)
            metrics["mib_per_s"] = round(size / MIB / wall, 2)
        metrics.update(extra)
        ctx.log(f"{workload}: {tool.tool} {wall:.2f} s, {metrics['cpu_s']:.2f} CPU s, "
                f"{metrics.get('payload_bytes', 0) / MIB:.2f} MiB payload: verified")
        return metrics, outcome.details

    def _record(
        self, workload: str, case: str, tool: str, runs: list[dict[str, float]],
        details: list[dict[str, Any]],
    ) -> None:
        if not runs:
            reason = self.broken.get(tool, "not run")
            if not reason.startswith(workload):
                reason = f"not run: failed earlier ({reason})"
            self.ctx.results.add(Record(workload, case, tool, status="failed", reason=reason))
            return
        keys = set(runs[0]).intersection(*runs[1:])
        metrics = {k: round(median([r[k] for r in runs]), 4) for k in sorted(keys)}
        info: dict[str, Any] = {"runs": runs, "tool_details": details}
        if len(runs) > 1:
            info["note"] = f"median of {len(runs)} runs, alternating tools"
        self.ctx.results.add(Record(workload, case, tool, metrics=metrics, details=info))


def build_source(ctx: Context) -> dict[str, float]:
    """Write the W1 tree; returns how long that took and the creation rate."""
    start = time.monotonic()
    written = write_files(ctx.source, ctx.specs)
    wall = time.monotonic() - start
    return {"files": len(ctx.specs), "bytes": written, "seconds": round(wall, 2),
            "files_per_s": round(len(ctx.specs) / wall, 1)}
