"""W6: a burst of new small files; the latency from each write to the replica.

Watchers: lsyncd (delay 1 s and its default 15 s), Syncthing (watcher delay 1 s and its
default 10 s) and, when it can be started, the tain agent. One-shot syncs started the
moment the burst is written (``tain push`` and rsync) form a second group: what a
cron-style mirror without a watcher would see at best. Every variant has its own source
and replica directory, is started and made ready first (a ``ready`` file has reached its
replica), then measured alone, and its replica is checked by SHA-256 afterwards.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.context import Context
from bench.latency import LatencyRun, burst_and_watch
from bench.measure import ClientRun, LoopbackMeter, ProcSampler
from bench.peers.lsyncd import Lsyncd
from bench.peers.rsync import RsyncDaemon
from bench.peers.syncthing import FolderSpec, SyncthingPair
from bench.peers.tain import TainSite
from bench.procs import BenchError, Daemon, wait_until
from bench.results import Record, cost_metrics
from bench.stats import summarize
from bench.treesum import compare, digest_tree
from bench.workloads import plan_burst

READY = "ready.txt"
SYNCTHING_DELAYS = (1, 10)


@dataclass
class Variant:
    tool: str
    variant: str
    group: str
    source: Path
    replica: Path
    pids: Callable[[], list[int]]
    start: Callable[[], None] | None = None
    stop: Callable[[], None] | None = None
    after_burst: Callable[[], None] | None = None
    client_runs: list[ClientRun] = field(default_factory=list)
    """Runs of a client during the burst (the one-shot syncs), for their CPU and RSS."""


def latency_dirs(workdir: Path, name: str) -> tuple[Path, Path]:
    base = workdir / "latency" / name
    return base / "source", base / "replica"


def syncthing_folders(workdir: Path) -> list[FolderSpec]:
    """The W6 folders, configured before Syncthing starts (a ``ready`` file in each)."""
    specs = []
    for delay in SYNCTHING_DELAYS:
        source, replica = latency_dirs(workdir, f"syncthing-{delay}")
        source.mkdir(parents=True, exist_ok=True)
        (source / READY).write_text("ready\n")
        specs.append(FolderSpec(f"lat{delay}", source, replica, delay))
    return specs


class LatencyCases:
    def __init__(
        self, ctx: Context, rsyncd: RsyncDaemon, site: TainSite, pair: SyncthingPair | None,
        agent_ok: tuple[bool, str],
    ) -> None:
        self.ctx, self.rsyncd, self.site, self.pair = ctx, rsyncd, site, pair
        self.agent_ok = agent_ok
        self.daemons: list[Daemon] = []

    def variants(self) -> list[Variant]:
        """Every variant, tain alternating with the peers."""
        syncthing: dict[int, Variant] = {}
        if self.pair is not None:
            for spec in self.pair.folders.values():
                if spec.watcher_delay_s is not None:
                    syncthing[spec.watcher_delay_s] = self._syncthing(spec)
        order: list[Variant | None] = [
            self._agent(), self._lsyncd(1), self._push_after(), syncthing.get(1),
            self._rsync_after(), self._lsyncd(None), syncthing.get(10),
        ]
        return [v for v in order if v is not None]

    def run(self) -> None:
        ok, why = self.agent_ok
        for number, variant in enumerate(self.variants()):
            if variant.tool == "tain agent" and not ok:
                self.ctx.log(f"W6: tain agent skipped: {why}")
                self.ctx.results.add(Record("W6", "burst of new files", variant.tool,
                                            group=variant.group, status="skipped", reason=why))
                continue
            self._measure(variant, seed=self.ctx.seed + 60 + number)

    def stop_all(self) -> None:
        for daemon in self.daemons:
            daemon.stop()

    def _measure(self, v: Variant, *, seed: int) -> None:
        ctx = self.ctx
        record = Record("W6", "burst of new files", v.tool, v.variant, group=v.group)
        specs = plan_burst(ctx.scale.burst_files, seed)
        ctx.log(f"W6: {v.tool} {v.variant} ...")
        try:
            if v.start is not None:
                v.start()
            wait_until(lambda: (v.replica / READY).is_file(), timeout=ctx.short_timeout,
                       what=f"{v.tool} {v.variant} to copy its ready file", interval=0.1)
            os.sync()  # untimed: flush what was written before this variant's turn
            time.sleep(1.0)  # let the startup sync settle
            timeout = 240.0 if ctx.scale.name == "full" else 120.0
            with LoopbackMeter() as lo, ProcSampler(v.pids()) as sampler:
                run = burst_and_watch(v.source, v.replica, specs, timeout=timeout,
                                      after_burst=v.after_burst)
            self._finish(record, run, lo.bytes, sampler.usage.cpu_s, sampler.usage.peak_rss_kib,
                         v)
        except Exception as exc:
            record.status, record.reason = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            if v.stop is not None:
                v.stop()
        ctx.log(f"W6: {v.tool} {v.variant}: {record.status} {record.reason} "
                f"p50={record.metrics.get('p50_s')} p99={record.metrics.get('p99_s')}")
        ctx.results.add(record)

    def _finish(self, record: Record, run: LatencyRun, lo: int, cpu: float, rss_kib: int,
                v: Variant) -> None:
        if run.after_burst_error:
            raise BenchError(f"the sync after the burst failed: {run.after_burst_error}")
        if run.missing:
            raise BenchError(f"{run.missing} files had not arrived after the deadline")
        check = compare(digest_tree(v.source, prefix="burst"),
                        digest_tree(v.replica, prefix="burst"))
        if not check.ok:
            raise BenchError(f"wrong copy: {check.summary()}")
        lat = summarize(run.latencies_s)
        record.metrics = {
            **{f"{k}_s": round(lat[k], 4) for k in ("p50", "p90", "p99", "max", "min", "mean")},
            "files": lat["n"],
            "write_s": round(run.write_s, 3),
            "last_arrival_s": round(run.last_arrival_s, 3),
            **cost_metrics(run.last_arrival_s, None, None, lo),
            "server_cpu_s": round(cpu, 3),
            "server_peak_rss_mib": round(rss_kib / 1024, 1),
        }
        client_cpu = sum(r.cpu_s for r in v.client_runs)
        client_rss = max((r.max_rss_kib for r in v.client_runs), default=0) / 1024
        if v.client_runs:
            record.metrics["client_cpu_s"] = round(client_cpu, 3)
            record.metrics["client_peak_rss_mib"] = round(client_rss, 1)
        record.metrics["cpu_s"] = round(cpu + client_cpu, 3)
        record.metrics["peak_rss_mib"] = round(rss_kib / 1024 + client_rss, 1)
        record.details = {"poll_s": run.poll_s,
                          "latencies_ms": [round(x * 1000, 1) for x in run.latencies_s]}

    # the variants

    def _ready(self, name: str) -> tuple[Path, Path]:
        source, replica = latency_dirs(self.ctx.workdir, name)
        source.mkdir(parents=True, exist_ok=True)
        (source / READY).write_text("ready\n")
        return source, replica

    def _lsyncd(self, delay: int | None) -> Variant:
        label = "delay 1 s" if delay else "delay 15 s, default"
        source, replica = self._ready(f"lsyncd-{delay or 'default'}")
        url = self.rsyncd.add_module(f"lat-lsyncd-{delay or 'default'}", replica)
        lsyncd = Lsyncd(f"lsyncd {label}", source, url, delay,
                        self.ctx.workdir / "lsyncd" / str(delay or "default"))
        self.ctx.results.configs[f"lsyncd ({label})"] = lsyncd.config
        self.daemons.append(lsyncd.daemon)
        return Variant("lsyncd", label, "watch", source, replica,
                       pids=lambda: [lsyncd.daemon.pid, self.rsyncd.daemon.pid],
                       start=lsyncd.start, stop=lsyncd.stop)

    def _syncthing(self, spec: FolderSpec) -> Variant:
        pair = self.pair
        if pair is None:
            raise BenchError("no syncthing")
        delay = spec.watcher_delay_s
        label = "watcher 10 s, default" if delay == 10 else f"watcher {delay} s"
        return Variant("syncthing", label, "watch", spec.source, spec.replica,
                       pids=lambda: pair.pids)

    def _agent(self) -> Variant:
        source, _ = self._ready("tain-agent")
        repo = "lat-agent"
        replica = self.site.published(repo)
        agent = self.site.agent(source, repo, self.ctx.workdir / "tain" / "agent.log")
        self.daemons.append(agent)

        def start() -> None:
            self.site.create_repo(repo)
            agent.start()

        return Variant("tain agent", "", "watch", source, replica,
                       pids=lambda: [agent.pid, self.site.daemon.pid], start=start,
                       stop=agent.stop)

    def _push_after(self) -> Variant:
        source, _ = self._ready("tain-push")
        repo = "lat-push"
        timeout = self.ctx.short_timeout

        def start() -> None:
            self.site.create_repo(repo)
            self.site.push(source, repo=repo, timeout=timeout)

        variant = Variant("tain push", "one run after the burst", "once", source,
                          self.site.published(repo), pids=lambda: [self.site.daemon.pid],
                          start=start)

        def push() -> None:
            variant.client_runs.append(self.site.push(source, repo=repo, timeout=timeout)[0])

        variant.after_burst = push
        return variant

    def _rsync_after(self) -> Variant:
        source, replica = self._ready("rsync")
        module = "lat-rsync"
        self.rsyncd.add_module(module, replica)
        timeout = self.ctx.short_timeout

        def sync() -> None:
            self.rsyncd.sync(source, module, timeout=timeout)

        variant = Variant("rsync", "one run after the burst", "once", source,
                          replica, pids=lambda: [self.rsyncd.daemon.pid], start=sync)

        def sync_after() -> None:
            variant.client_runs.append(self.rsyncd.sync(source, module, timeout=timeout)[0])

        variant.after_burst = sync_after
        return variant
