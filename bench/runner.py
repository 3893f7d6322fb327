"""One run: generate the workloads, start every tool, run W1-W7, stop everything (also on
failure or Ctrl-C), then write the JSON, the Markdown table and the chart."""

from __future__ import annotations

import shutil
import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import charts, report
from bench.cases_download import DownloadCases
from bench.cases_latency import LatencyCases, syncthing_folders
from bench.cases_mirror import MirrorCases
from bench.cases_redirector import RedirectorCases
from bench.cases_source import SourceCases
from bench.cases_sync import (
    RsyncSync,
    SyncCases,
    SyncthingSync,
    SyncTool,
    TainPushSync,
    build_source,
)
from bench.cases_targets import TargetCases
from bench.context import Context
from bench.facts import CAVEATS, machine_facts, tool_versions
from bench.measure import background_loopback_rate
from bench.peers.rsync import CLIENT_FLAGS, RsyncDaemon
from bench.peers.syncthing import FolderSpec, SyncthingPair
from bench.peers.tain import TainSite
from bench.results import Results
from bench.scale import Scale
from bench.sites import ProcessSites
from bench.workloads import plan_tree

BASE_WORKLOADS = ("sync", "latency", "download", "targets")
"""W1-W7 and T1/T3: they share the generated source tree and the rsync, tain and
Syncthing daemons."""
ALL_WORKLOADS = (*BASE_WORKLOADS, "redirector", "mirror", "source")


@dataclass
class RunOptions:
    scale: Scale
    seed: int
    workdir: Path
    results_dir: Path
    keep: bool
    workloads: tuple[str, ...] = ALL_WORKLOADS


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def run(options: RunOptions) -> Path:
    """Run the suite; returns the path of the JSON results."""
    signal.signal(signal.SIGTERM, _terminate)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    path = options.results_dir / f"{stamp}-{options.scale.name}.json"
    results = Results(path)
    ctx = Context(options.scale, options.seed, options.workdir, results)
    options.workdir.mkdir(parents=True, exist_ok=True)
    results.meta = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": options.scale.as_dict(),
        "seed": options.seed,
        "machine": machine_facts(options.workdir),
        "versions": tool_versions(),
        "caveats": CAVEATS,
        "background_lo_bytes_per_s": round(background_loopback_rate()),
    }
    ctx.log(f"{options.scale.name} run in {options.workdir}, results {path}")
    try:
        with ExitStack() as stack:
            _run_cases(ctx, stack, options.workloads)
    finally:
        results.meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        results.meta["run_seconds"] = round(time.monotonic() - ctx.started, 1)
        results.meta["background_lo_bytes_per_s_at_end"] = round(background_loopback_rate())
        results.save(final=True)
        report.write_markdown(results, path.with_suffix(".md"))
        charts.write_chart(results, path.with_suffix(".png"))
        if not options.keep:
            ctx.log(f"removing {options.workdir}")
            shutil.rmtree(options.workdir, ignore_errors=True)
    ctx.log(f"done: {path}, {path.with_suffix('.md')}, {path.with_suffix('.png')}")
    return path


def _run_cases(ctx: Context, stack: ExitStack, workloads: tuple[str, ...]) -> None:
    if any(w in BASE_WORKLOADS for w in workloads):
        _run_base_cases(ctx, stack, workloads)
    scenarios = {"redirector": RedirectorCases, "mirror": MirrorCases, "source": SourceCases}
    for name, cases in scenarios.items():
        if name in workloads:
            launcher = ProcessSites(ctx.workdir / f"sites-{name}")
            stack.callback(launcher.stop_all)
            ctx.log(f"{name} scenario ...")
            cases(ctx, launcher).run()


def _run_base_cases(ctx: Context, stack: ExitStack, workloads: tuple[str, ...]) -> None:
    ctx.specs = plan_tree(ctx.scale, ctx.seed)
    ctx.log(f"generating {len(ctx.specs)} files ...")
    ctx.results.meta["source"] = build_source(ctx)
    ctx.log(f"source: {ctx.results.meta['source']}")

    rsyncd = RsyncDaemon(ctx.workdir)
    rsyncd.add_module("bulk", ctx.workdir / "rsync-replica")
    site = TainSite(ctx.workdir)
    bulk = FolderSpec("bulk", ctx.source, ctx.workdir / "syncthing-replica", None, paused=True)
    folders = [bulk, *(syncthing_folders(ctx.workdir) if "latency" in workloads else [])]
    pair = SyncthingPair(ctx.workdir, folders)
    for name, thing in (("rsync daemon", rsyncd), ("tain", site), ("syncthing", pair)):
        stack.callback(thing.stop)
        ctx.log(f"starting {name} ...")
        thing.start()
    agent_ok = site.agent_available()
    ctx.results.meta["tain_agent"] = "available" if agent_ok[0] else agent_ok[1]
    configs = ctx.results.configs
    configs["rsync client"] = f"rsync {' '.join(CLIENT_FLAGS)} SRC/ rsync://127.0.0.1:PORT/MODULE/"
    configs["tain"] = {"tain.toml": site.config_text(),
                       "push": "tain push SRC -r REPO --json --cache FILE"}
    configs["syncthing"] = pair.config_text()

    if "sync" in workloads:
        tools: list[SyncTool] = [
            TainPushSync(site, ctx.source),
            RsyncSync(rsyncd, ctx.source, "bulk", ctx.workdir / "rsync-replica"),
            SyncthingSync(pair, "bulk"),
        ]
        SyncCases(ctx, tools).run()
    if "latency" in workloads:
        latency = LatencyCases(ctx, rsyncd, site, pair, agent_ok)
        stack.callback(latency.stop_all)
        latency.run()
    configs["rsyncd.conf"] = rsyncd.config_text()
    if "targets" in workloads:
        TargetCases(ctx, rsyncd, site).run()
    if "download" in workloads:
        if "sync" not in workloads:
            site.push(ctx.source, timeout=ctx.long_timeout)
        DownloadCases(ctx, site).run()
