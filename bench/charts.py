"""The PNG chart: W6 latency distributions, W1-W5 sync times, W7 download throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results import Record, Results


def write_chart(results: Results, path: Path) -> Path | None:
    """Draw the chart; None (and nothing written) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    records = [r for r in results.records if r.status == "ok"]
    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    _latency(axes[0][0], records)
    _sync_times(axes[0][1], records)
    _download(axes[1][0], records, "large file download", "throughput_mib_s", "MiB/s")
    _download(axes[1][1], records, "small files", "requests_per_s", "requests/s")
    scale = results.meta.get("scale", {}).get("name", "?")
    fig.suptitle(f"tain benchmark ({scale} run, {results.meta.get('started', '?')}; "
                 "2 shared cores, warm cache)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _latency(ax: Any, records: list[Record]) -> None:
    drawn = False
    for r in records:
        values = sorted(r.details.get("latencies_ms", []) if r.workload == "W6" else [])
        if not values:
            continue
        xs = [max(v, 1.0) / 1000 for v in values]
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.step(xs, ys, where="post", label=r.label, linewidth=2 if r.is_tain else 1.2,
                linestyle="-" if r.group == "watch" else "--")
        drawn = True
    ax.set_xscale("log")
    ax.set_xlabel("latency from write to replica (s, log)")
    ax.set_ylabel("fraction of files arrived")
    ax.set_title("W6: burst of new files (dashed: one sync run after the burst)")
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        ax.legend(fontsize=8, loc="lower right")


def _sync_times(ax: Any, records: list[Record]) -> None:
    sync = [r for r in records if r.workload in {"W1", "W2", "W3", "W4", "W5"}]
    cases: list[str] = []
    tools: list[str] = []
    for r in sync:
        name = f"{r.workload}: {r.case}"
        if name not in cases:
            cases.append(name)
        if r.label not in tools:
            tools.append(r.label)
    width = 0.8 / max(1, len(tools))
    for number, tool in enumerate(tools):
        xs, ys = [], []
        for i, case in enumerate(cases):
            for r in sync:
                if r.label == tool and f"{r.workload}: {r.case}" == case:
                    xs.append(i + number * width)
                    ys.append(r.metrics.get("wall_s", 0))
        ax.bar(xs, ys, width=width, label=tool)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
    ax.set_xticklabels([c[:38] for c in cases], rotation=20, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("wall time (s, log)")
    ax.set_title("W1-W5: sync time, every copy verified")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    if tools:
        ax.legend(fontsize=8)


def _download(ax: Any, records: list[Record], case: str, key: str, unit: str) -> None:
    chosen = [r for r in records if r.workload == "W7" and r.case.startswith(case)
              and key in r.metrics]
    ax.bar([r.label for r in chosen], [r.metrics[key] for r in chosen],
           color=["tab:blue" if r.is_tain else "tab:gray" for r in chosen])
    for i, r in enumerate(chosen):
        ax.annotate(f"{r.metrics[key]:,.0f}", (i, r.metrics[key]), ha="center",
                    va="bottom", fontsize=9)
    ax.set_ylabel(unit)
    ax.set_title(f"W7: {case} (median)")
