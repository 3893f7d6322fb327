"""The agent issue's three targets, judged from a run's records (pure: records in,
Markdown out): initial push no slower than rsync to its daemon, change to commit p50
under 1 s and p99 under 3 s, agent memory under 200 MB for 1,000,000 files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.results import Record

MB = 1_000_000 / (1024 * 1024)  # MiB per MB
TARGET_FILES = 1_000_000


@dataclass(frozen=True)
class TargetRow:
    target: str
    measured: str
    reference: str
    verdict: str


def target_rows(records: Sequence[Record]) -> list[TargetRow]:
    rows = [_initial_push(records)]
    rows += _latency(records)
    rows.append(_memory(records))
    return [r for r in rows if r is not None]


def _find(records: Sequence[Record], workload: str, tool: str, variant: str = "") -> Record | None:
    for r in records:
        if r.workload == workload and r.tool == tool and r.status == "ok" and (
            not variant or r.variant == variant
        ):
            return r
    return None


def _initial_push(records: Sequence[Record]) -> TargetRow:
    name = "initial push, tain / rsync daemon wall time <= 1"
    for workload, how in (("T1", "median of repeated rounds"), ("W1", "one run")):
        tain, rsync = _find(records, workload, "tain push"), _find(records, workload, "rsync")
        if tain and rsync:
            ratio = tain.metrics["wall_s"] / rsync.metrics["wall_s"]
            return TargetRow(
                name, f"{ratio:.2f}x ({tain.metrics['wall_s']:.2f} s vs "
                f"{rsync.metrics['wall_s']:.2f} s, {workload}, {how})",
                "rsync does not fsync; tain fsyncs every blob", _verdict(ratio <= 1),
            )
    return TargetRow(name, "not measured", "", "n/a")


def _latency(records: Sequence[Record]) -> list[TargetRow]:
    agent = _find(records, "W6", "tain agent")
    peers = [r for r in records if r.workload == "W6" and r.status == "ok"
             and r.group == (agent.group if agent else "") and not r.is_tain
             and "default" not in r.variant]  # the peers at their fastest settings
    reference = "; ".join(
        f"{p.label} p50 {p.metrics.get('p50_s', 0):.2f} s, p99 {p.metrics.get('p99_s', 0):.2f} s"
        for p in peers
    )
    rows = []
    for key, limit in (("p50_s", 1.0), ("p99_s", 3.0)):
        name = f"change to commit {key[:3]} < {limit:g} s (W6 burst)"
        if agent is None or key not in agent.metrics:
            rows.append(TargetRow(name, "not measured", reference, "n/a"))
            continue
        value = agent.metrics[key]
        rows.append(TargetRow(name, f"{value:.2f} s", reference, _verdict(value < limit)))
    return rows


def _memory(records: Sequence[Record]) -> TargetRow:
    name = f"agent RSS < 200 MB at {TARGET_FILES:,} files"
    mem = _find(records, "T3", "tain agent")
    if mem is None:
        return TargetRow(name, "not measured", "", "n/a")
    files, peak = int(mem.metrics["files"]), mem.metrics["peak_rss_mib"]
    measured = f"{peak:.1f} MiB peak at {files:,} files"
    limit_mib = 200 * MB
    if files >= TARGET_FILES:
        return TargetRow(name, measured, "", _verdict(peak < limit_mib))
    return TargetRow(name, measured, f"a smaller tree: run with --agent-files {TARGET_FILES}",
                     "n/a at this size")


def _verdict(met: bool) -> str:
    return "met" if met else "missed"


def render_targets(records: Sequence[Record]) -> str:
    lines = ["| target | measured | for comparison | verdict |", "| --- | --- | --- | --- |"]
    lines += [f"| {r.target} | {r.measured} | {r.reference} | {r.verdict} |"
              for r in target_rows(records)]
    return "\n".join(lines)
