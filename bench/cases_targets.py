"""The agent issue's targets, measured directly (``--only targets``).

T1: the initial sync of the W1 tree, ``tain push`` against rsync to its daemon, repeated
(``target_rounds``), alternating which tool goes first; each round goes to a new
repository and a new rsync module, so every round is a real initial sync, and no
replica is deleted before the end of the run (MEASURING.md). The medians and their
ratio are recorded; the target is a ratio of at most 1.

T3: the agent's memory on a tree of ``agent_files`` files (mostly empty, in nested
directories of 1,000): the agent runs until the site's head revision holds the whole
tree, its RSS sampled from /proc every 0.5 s (VmRSS, and VmHWM at the end). The target
is under 200 MB at 1,000,000 files; a smaller run also reports MiB per 1,000 files.

T2 (change to commit, p50 < 1 s, p99 < 3 s) is W6's "tain agent" record (``--only
latency``); the report's targets table reads it from there.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.context import Context, rotate
from bench.peers.rsync import RsyncDaemon
from bench.peers.tain import TainSite
from bench.procs import BenchError
from bench.results import Record
from bench.scale import MIB
from bench.stats import median
from bench.treesum import compare, digest_tree

RSS_TARGET_MB = 200
FILES_PER_DIR = 1000


class TargetCases:
    def __init__(self, ctx: Context, rsyncd: RsyncDaemon, site: TainSite) -> None:
        self.ctx, self.rsyncd, self.site = ctx, rsyncd, site

    def run(self) -> None:
        self.initial_sync()
        self.agent_memory()

    # -- T1 ----------------------------------------------------------------------------

    def initial_sync(self) -> None:
        ctx = self.ctx
        expected = ctx.expected()
        walls: dict[str, list[float]] = {"tain push": [], "rsync": []}
        for round_ in range(ctx.scale.target_rounds):
            for tool in rotate(list(walls), round_):
                os.sync()  # untimed, as in W1
                wall, replica = self._one_initial(tool, round_)
                check = compare(expected, digest_tree(replica))
                if not check.ok:
                    raise BenchError(f"T1 {tool}: wrong copy: {check.summary()}")
                walls[tool].append(wall)
                ctx.log(f"T1 round {round_ + 1}: {tool} {wall:.2f} s: verified")
        size = sum(s for s, _ in expected.values())
        for tool, runs in walls.items():
            ctx.results.add(Record(
                "T1", "initial sync, repeated", tool,
                metrics={"wall_s": round(median(runs), 4),
                         "mib_per_s": round(size / MIB / median(runs), 2)},
                details={"runs_s": [round(w, 3) for w in runs],
                         "note": f"median of {len(runs)} rounds, alternating order; "
                                 "rsync does not fsync, tain fsyncs every blob"},
            ))

    def _one_initial(self, tool: str, round_: int) -> tuple[float, Path]:
        name = f"t1-{round_}"
        if tool == "rsync":
            replica = self.ctx.workdir / "t1-rsync" / name
            self.rsyncd.add_module(name, replica)
            start = time.monotonic()
            self.rsyncd.sync(self.ctx.source, name, timeout=self.ctx.long_timeout)
            return time.monotonic() - start, replica
        self.site.create_repo(name)
        start = time.monotonic()
        self.site.push(self.ctx.source, repo=name, timeout=self.ctx.long_timeout)
        return time.monotonic() - start, self.site.published(name)

    # -- T3 ----------------------------------------------------------------------------

    def agent_memory(self) -> None:
        ctx = self.ctx
        files = ctx.scale.agent_files
        tree = ctx.workdir / "t3-tree"
        ctx.log(f"T3: writing {files} files ...")
        write_many_files(tree, files)
        repo = "t3"
        self.site.create_repo(repo)
        agent = self.site.agent(tree, repo, ctx.workdir / "t3-agent.log")
        samples: list[tuple[float, int]] = []
        start = time.monotonic()
        agent.start()
        try:
            deadline = start + ctx.long_timeout * 4
            while self._head_files(repo) < files:
                samples.append((time.monotonic() - start, _rss_kib(agent.pid, "VmRSS")))
                if time.monotonic() > deadline:
                    raise BenchError(f"T3: the agent did not sync {files} files in time")
                agent.check_alive()
                time.sleep(0.5)
            synced = time.monotonic() - start
            for _ in range(10):  # settled: watching, nothing to do
                samples.append((time.monotonic() - start, _rss_kib(agent.pid, "VmRSS")))
                time.sleep(0.5)
            peak = _rss_kib(agent.pid, "VmHWM")
        finally:
            agent.stop()
        idle = samples[-1][1]
        ctx.log(f"T3: {files} files synced in {synced:.1f} s; agent peak RSS "
                f"{peak / 1024:.1f} MiB, {idle / 1024:.1f} MiB when idle")
        ctx.results.add(Record(
            "T3", f"agent watching {files} files", "tain agent",
            metrics={"files": files, "peak_rss_mib": round(peak / 1024, 1),
                     "idle_rss_mib": round(idle / 1024, 1),
                     "peak_rss_mib_per_1000_files": round(peak / 1024 / files * 1000, 3),
                     "initial_sync_s": round(synced, 1)},
            details={"rss_samples_kib": samples[:: max(1, len(samples) // 200)]},
        ))

    def _head_files(self, repo: str) -> int:
        """Files in the repository's head revision."""
        url = f"{self.site.url}/api/v1/repos/{repo}/revisions?limit=1"
        auth = {"Authorization": f"Bearer {self.site.token}"}
        request = urllib.request.Request(url, headers=auth)
        with urllib.request.urlopen(request, timeout=30) as resp:
            body: dict[str, Any] = json.load(resp)
        revisions = body.get("revisions") or []
        return int(revisions[0]["files"]) if revisions else 0


def write_many_files(root: Path, files: int) -> int:
    """``files`` files in directories of ``FILES_PER_DIR`` (one in 100 holds a line, the
    rest are empty); returns ``files``."""
    for start in range(0, files, FILES_PER_DIR):
        d = root / f"a{start // (FILES_PER_DIR * 100):02d}" / f"b{start // FILES_PER_DIR:04d}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(min(FILES_PER_DIR, files - start)):
            fd = os.open(d / f"f{j:04d}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            if j % 100 == 0:
                os.write(fd, b"%d\n" % (start + j))
            os.close(fd)
    return files


def _rss_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
