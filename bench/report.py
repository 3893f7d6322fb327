"""The Markdown report: the ratio table (tain / each peer, measured in the same run) and
every figure behind it. Pure: records in, text out (``write_markdown`` writes it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import Record, Results
from bench.stats import ratio
from bench.targets import render_targets

MIB = 1 << 20


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool = False


SYNC = (
    Metric("wall_s", "wall time", "s"),
    Metric("cpu_s", "CPU, client + daemons", "s"),
    Metric("payload_bytes", "bytes sent, tool's own count", "MiB"),
    Metric("lo_bytes", "loopback bytes", "MiB"),
    Metric("peak_rss_mib", "peak RSS, client + daemons", "MiB"),
)
LATENCY = (
    Metric("p50_s", "latency p50", "s"),
    Metric("p99_s", "latency p99", "s"),
    Metric("max_s", "latency max", "s"),
    Metric("cpu_s", "CPU during the burst", "s"),
)
DOWNLOAD = (
    Metric("throughput_mib_s", "throughput", "MiB/s", higher_is_better=True),
    Metric("requests_per_s", "requests/s", "1/s", higher_is_better=True),
    Metric("p99_ms", "request latency p99", "ms"),
    Metric("server_cpu_s", "server CPU", "s"),
    Metric("peak_rss_mib", "peak RSS, server + client", "MiB"),
)
REDIRECT = (
    Metric("requests_per_s", "redirects/s", "1/s", higher_is_better=True),
    Metric("p50_ms", "latency p50", "ms"),
    Metric("p99_ms", "latency p99", "ms"),
    Metric("server_cpu_s", "server CPU", "s"),
    Metric("peak_rss_mib", "peak RSS, server + client", "MiB"),
)
PROPAGATION = (
    Metric("p50_s", "latency p50", "s"),
    Metric("p99_s", "latency p99", "s"),
    Metric("max_s", "latency max", "s"),
)
PULL = (
    Metric("wall_s", "wall time", "s"),
    Metric("cpu_s", "CPU, site or client + daemons", "s"),
    Metric("peak_rss_mib", "peak RSS", "MiB"),
)
METRICS = {"W1": SYNC, "W2": SYNC, "W3": SYNC, "W4": SYNC, "W5": SYNC, "W6": LATENCY,
           "W7": DOWNLOAD, "W8": REDIRECT, "W9": PROPAGATION, "W10": PULL}
FAMILIES = (
    ("One-shot syncs (W1-W5)", ("W1", "W2", "W3", "W4", "W5"), SYNC),
    ("Change propagation (W6)", ("W6",), LATENCY),
    ("Downloads (W7)", ("W7",), DOWNLOAD),
    ("Redirector (W8)", ("W8",), REDIRECT),
    ("Mirror propagation (W9)", ("W9",), PROPAGATION),
    ("Pull source from an rsync daemon (W10)", ("W10",), PULL),
)


@dataclass(frozen=True)
class RatioRow:
    workload: str
    case: str
    metric: str
    tain: str
    peer: str
    tain_value: str
    peer_value: str
    ratio: str
    better: str


def fmt_value(value: float, key: str = "") -> str:
    """A figure for a table: byte counts (keys ending in ``bytes``) in MiB."""
    if key.endswith("bytes"):
        value /= MIB
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _cases(records: Iterable[Record]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for r in records:
        if (r.workload, r.case) not in seen:
            seen.append((r.workload, r.case))
    return seen


def ratio_rows(records: Sequence[Record]) -> list[RatioRow]:
    """tain / peer for every metric both measured, case by case, within a group."""
    rows: list[RatioRow] = []
    for workload, case in _cases(records):
        here = [r for r in records if (r.workload, r.case) == (workload, case)]
        for tain in (r for r in here if r.is_tain):
            for peer in (r for r in here if not r.is_tain and r.group == tain.group):
                rows.extend(_pair_rows(workload, case, tain, peer))
    return rows


def _pair_rows(workload: str, case: str, tain: Record, peer: Record) -> list[RatioRow]:
    if tain.status != "ok" or peer.status != "ok":
        who = tain if tain.status != "ok" else peer
        return [RatioRow(workload, case, "-", tain.label, peer.label,
                         tain.status, peer.status, "n/a", f"{who.label} {who.status}")]
    rows = []
    for metric in METRICS.get(workload, SYNC):
        t, p = tain.metrics.get(metric.key), peer.metrics.get(metric.key)
        if t is None or p is None:
            continue
        value = ratio(t, p)
        better = "higher" if metric.higher_is_better else "lower"
        rows.append(RatioRow(
            workload, case, f"{metric.label} ({metric.unit})", tain.label, peer.label,
            fmt_value(t, metric.key), fmt_value(p, metric.key), fmt_ratio(value),
            f"{better} is better",
        ))
    return rows


def _pairs(records: Sequence[Record]) -> list[tuple[Record, Record]]:
    pairs: list[tuple[Record, Record]] = []
    for workload, case in _cases(records):
        here = [r for r in records if (r.workload, r.case) == (workload, case)]
        for tain in (r for r in here if r.is_tain):
            pairs.extend((tain, p) for p in here if not p.is_tain and p.group == tain.group)
    return pairs


def render_summary(records: Sequence[Record]) -> str:
    """One small table per family: a row per case and peer, a column per metric."""
    out = []
    for title, workloads, metrics in FAMILIES:
        pairs = [(t, p) for t, p in _pairs(records) if t.workload in workloads]
        if not pairs:
            continue
        names = [m.label + (" ↑" if m.higher_is_better else "") for m in metrics]
        out += [f"**{title}**", "",
                "| workload | case | tain | peer | " + " | ".join(names) + " |",
                "| --- | --- | --- | --- |" + " ---: |" * len(metrics)]
        for tain, peer in pairs:
            if tain.status != "ok" or peer.status != "ok":
                who = tain if tain.status != "ok" else peer
                cells = [f"{who.label} {who.status}"] + [""] * (len(metrics) - 1)
            else:
                cells = [fmt_ratio(ratio(tain.metrics.get(m.key), peer.metrics.get(m.key)))
                         for m in metrics]
            out.append(f"| {tain.workload} | {tain.case} | {tain.label} | {peer.label} | "
                       + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def render_ratio_table(rows: Sequence[RatioRow]) -> str:
    lines = ["| workload | case | metric | tain | peer | tain value | peer value | tain / peer |",
             "| --- | --- | --- | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        note = "" if r.ratio == "n/a" else (" ↑" if r.better.startswith("higher") else "")
        lines.append(f"| {r.workload} | {r.case} | {r.metric} | {r.tain} | {r.peer} | "
                     f"{r.tain_value} | {r.peer_value} | {r.ratio}{note} |")
    return "\n".join(lines)


FIGURES = ("wall_s", "cpu_s", "client_cpu_s", "server_cpu_s", "peak_rss_mib",
           "payload_bytes", "lo_bytes", "files_per_s", "fs_create_files_per_s",
           "p50_s", "p99_s", "max_s", "throughput_mib_s", "requests_per_s", "p50_ms", "p99_ms")


def render_figures(records: Sequence[Record]) -> str:
    head = ["workload", "case", "tool", "status", *FIGURES]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in records:
        cells = [r.workload, r.case, r.label, r.status if r.status == "ok" else
                 f"{r.status}: {r.reason}".replace("|", "/")]
        for key in FIGURES:
            value = r.metrics.get(key)
            cells.append("" if value is None else fmt_value(value, key))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(results: Results) -> str:
    meta: dict[str, Any] = results.meta
    machine = meta.get("machine", {})
    scale = meta.get("scale", {})
    versions = meta.get("versions", {})
    parts = [
        f"# tain benchmark: {scale.get('name', '?')} run, {meta.get('started', '?')}",
        "",
        f"Machine: {machine.get('cpus')} cores ({machine.get('cpu_model')}), "
        f"{machine.get('memory_gib')} GiB, kernel {machine.get('kernel')}, "
        f"{machine.get('workdir_filesystem')}; warm cache. Run took "
        f"{meta.get('run_seconds', '?')} s. Background loopback traffic: "
        f"{meta.get('background_lo_bytes_per_s', '?')} B/s at start, "
        f"{meta.get('background_lo_bytes_per_s_at_end', '?')} B/s at the end.",
        "",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()),
        "",
        f"tain agent: {meta.get('tain_agent', '?')}.",
        "",
        *([f"Code under test: {meta['code_under_test']}.", ""]
          if meta.get("code_under_test") else []),
        "## Targets of the agent issue",
        "",
        render_targets(results.records),
        "",
        "## Ratios: tain / peer",
        "",
        "Each cell is tain's figure divided by the peer's, both measured in this run. Below 1 "
        "means tain took less (time, CPU, bytes, memory, latency); for columns marked ↑ "
        "(throughput, requests/s) above 1 means tain is faster. Repeated cases are medians.",
        "",
        render_summary(results.records),
        "### The same ratios with their values",
        "",
        render_ratio_table(ratio_rows(results.records)),
        "",
        "## All figures",
        "",
        "Seconds, MiB (bytes columns), files/s; `cpu_s` adds client and daemon CPU; "
        "W6 `wall_s` is from the first write to the last arrival.",
        "",
        render_figures(results.records),
        "",
        "## Caveats",
        "",
        *[f"- {c}" for c in meta.get("caveats", [])],
        *[f"- not measured: {c}" for c in meta.get("not_measured", [])],
        "",
        "Exact configurations of every tool are in the JSON file (`configs`).",
        "",
    ]
    return "\n".join(parts)


def write_markdown(results: Results, path: Path) -> Path:
    path.write_text(render_markdown(results))
    return path
