"""The results of one run: records (one per tool, workload and case) plus the run's
facts and the exact configuration of every tool, saved as JSON after every record so
that an interrupted run still leaves what it measured (``*.json.tmp``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import ClientRun, DaemonUsage


@dataclass
class Record:
    workload: str
    case: str
    tool: str
    variant: str = ""
    group: str = ""
    """tain is compared with the peers of its own group only (W6: watchers with the
    agent, one-shot syncs after the burst with ``tain push``)."""
    status: str = "ok"
    """ok, failed (wrong copy, error or timeout: not timed), skipped (not run: why)."""
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.tool} ({self.variant})" if self.variant else self.tool

    @property
    def is_tain(self) -> bool:
        return self.tool.startswith("tain")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(**data)


def cost_metrics(
    wall_s: float, client: ClientRun | None, server: DaemonUsage | None, lo_bytes: int | None
) -> dict[str, float]:
    """The common figures of one measured operation."""
    metrics: dict[str, float] = {"wall_s": round(wall_s, 4)}
    cpu = 0.0
    if client is not None:
        metrics["client_cpu_s"] = round(client.cpu_s, 3)
        metrics["client_peak_rss_mib"] = round(client.max_rss_kib / 1024, 1)
        cpu += client.cpu_s
    if server is not None:
        metrics["server_cpu_s"] = round(server.cpu_s, 3)
        metrics["server_peak_rss_mib"] = round(server.peak_rss_kib / 1024, 1)
        cpu += server.cpu_s
    metrics["cpu_s"] = round(cpu, 3)
    metrics["peak_rss_mib"] = round(
        metrics.get("client_peak_rss_mib", 0) + metrics.get("server_peak_rss_mib", 0), 1
    )
    if lo_bytes is not None:
        metrics["lo_bytes"] = lo_bytes
    return metrics


@dataclass
class Results:
    path: Path
    """Final JSON path; ``path + .tmp`` holds the run while it goes on."""
    meta: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)

    def add(self, record: Record) -> Record:
        self.records.append(record)
        self.save(final=False)
        return record

    def as_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "configs": self.configs,
                "records": [asdict(r) for r in self.records]}

    def save(self, *, final: bool) -> Path:
        target = self.path if final else self.path.with_name(self.path.name + ".tmp")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.as_dict(), indent=1, sort_keys=False) + "\n")
        if final:
            self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)
        return target


def load_results(path: Path) -> Results:
    data = json.loads(path.read_text())
    return Results(path, data.get("meta", {}), data.get("configs", {}),
                   [Record.from_dict(r) for r in data.get("records", [])])
