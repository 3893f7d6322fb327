"""W10: a pull source (tain's rsync job) against plain ``rsync -rlt`` from the same rsync
daemon into a directory: the first run over ``source_files`` files, then a run with
nothing changed.

tain's figure is from the request that starts the run (``POST /api/v1/sources/NAME/run``;
the job, added just before, has no schedule) until the run is recorded as finished; the run
fetches with rsync into its staging tree, then hashes every new file, stores it as a
versioned blob (fsynced) and commits one revision. Plain rsync copies and fsyncs nothing.
The tools alternate: tain first for the initial sync, rsync first for the no-op; no tree
is deleted during the run (MEASURING.md), and sync(2) runs, untimed, before each turn.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.context import Context, probe_create_rate
from bench.measure import LoopbackMeter, ProcSampler, run_timed
from bench.peers.rsync import RsyncDaemon
from bench.procs import BenchError, wait_until
from bench.results import Record, cost_metrics
from bench.sites import SiteHandle, SiteLauncher, create_repo, head_of
from bench.treesum import compare, digest_tree
from bench.workloads import FileSpec, write_files

REPO = "upstream"
JOB = "upstream"
PLAIN_FLAGS = ["-rlt"]
TAIN, RSYNC = "tain source", "rsync -rlt"


class SourceCases:
    def __init__(self, ctx: Context, launcher: SiteLauncher) -> None:
        self.ctx, self.launcher = ctx, launcher
        self.dir = ctx.workdir / "w10"
        self.upstream = self.dir / "upstream"
        self.rsyncd = RsyncDaemon(self.dir)

    def run(self) -> None:
        try:
            self._run()
        except BenchError as exc:
            for tool in (TAIN, RSYNC):
                self.ctx.results.add(Record("W10", "pull source", tool, status="failed",
                                            reason=str(exc)))
        finally:
            self.rsyncd.stop()
            self.launcher.stop_all()

    def _run(self) -> None:
        ctx = self.ctx
        count = ctx.scale.source_files
        specs = [FileSpec(f"pool/d{i // 100:03}/pkg{i:05}.deb", 1024 + (i * 131) % 7168,
                          ctx.seed + 1000 + i) for i in range(count)]
        write_files(self.upstream, specs)
        url = self.rsyncd.add_module("upstream", self.upstream)
        self.rsyncd.start()
        site = self.launcher.create("w10-site")
        self.launcher.start(site)
        create_repo(site, REPO)
        ctx.results.configs["tain source"] = {"kind": "rsync", "url": url, "max_delete": "none"}
        ctx.results.configs["rsync -rlt"] = f"rsync {' '.join(PLAIN_FLAGS)} {url} DIR/"
        expected = digest_tree(self.upstream)
        initial = f"initial sync, {count} files"
        os.sync()
        rate = probe_create_rate(self.dir / "probe-tain", files=min(2000, count))
        self._record(initial, TAIN, self._tain_first(site, url), rate, count)
        os.sync()
        rate = probe_create_rate(self.dir / "probe-rsync", files=min(2000, count))
        self._record(initial, RSYNC, self._rsync(url), rate, count)
        self._check(site, expected)
        noop = "re-sync, nothing changed"
        os.sync()
        self._record(noop, RSYNC, self._rsync(url), None, 0)
        os.sync()
        self._record(noop, TAIN, self._tain_again(site), None, 0)
        if head_of(site, REPO) != 1:
            raise BenchError(f"the no-op run made a new revision ({head_of(site, REPO)})")

    def _record(self, case: str, tool: str, measured: tuple[dict[str, float], dict[str, Any]],
                create_rate: float | None, files: int) -> None:
        metrics, details = measured
        if create_rate is not None:
            metrics["fs_create_files_per_s"] = round(create_rate)
            metrics["files_per_s"] = round(files / metrics["wall_s"])
        self.ctx.results.add(Record("W10", case, tool, metrics=metrics, details=details))
        self.ctx.log(f"W10: {case}: {tool} {metrics['wall_s']:.2f} s")

    def _tain_first(self, site: SiteHandle, url: str) -> tuple[dict[str, float], dict[str, Any]]:
        body = {"name": JOB, "repo": REPO, "kind": "rsync", "url": url, "max_delete": "none"}
        with site.client() as c:  # no schedule: the job runs when asked
            c.post("/api/v1/sources", json=body).raise_for_status()
        return self._tain_run(site, lambda c: c.post(f"/api/v1/sources/{JOB}/run"), 0)

    def _tain_again(self, site: SiteHandle) -> tuple[dict[str, float], dict[str, Any]]:
        return self._tain_run(site, lambda c: c.post(f"/api/v1/sources/{JOB}/run"), 1)

    def _tain_run(self, site: SiteHandle, start: Any,
                  runs_before: int) -> tuple[dict[str, float], dict[str, Any]]:
        with LoopbackMeter() as lo, ProcSampler([*site.pids, self.rsyncd.daemon.pid]) as sampler, \
                site.client() as c:
            began = time.monotonic()
            start(c).raise_for_status()
            run = wait_until_run_ends(c, runs_before, timeout=self.ctx.long_timeout)
            wall = time.monotonic() - began
        if run["state"] != "success":
            raise BenchError(f"the source run ended {run['state']}: {run.get('error')}")
        metrics = cost_metrics(wall, None, sampler.usage, lo.bytes)
        metrics["run_s"] = round(run["ended_at"] - run["started_at"], 4)
        return metrics, {"run": run, "note": "wall_s: from the request to the run's end; "
                         "run_s: the run as tain records it"}

    def _rsync(self, url: str) -> tuple[dict[str, float], dict[str, Any]]:
        target = self.dir / "rsync-copy"
        target.mkdir(parents=True, exist_ok=True)
        with LoopbackMeter() as lo, ProcSampler([self.rsyncd.daemon.pid]) as sampler:
            run = run_timed(["rsync", *PLAIN_FLAGS, url, f"{target}/"],
                            timeout=self.ctx.long_timeout).check()
        return cost_metrics(run.wall_s, run, sampler.usage, lo.bytes), {}

    def _check(self, site: SiteHandle, expected: Any) -> None:
        for name, tree in ((TAIN, site.published(REPO)), (RSYNC, self.dir / "rsync-copy")):
            result = compare(expected, digest_tree(tree))
            if not result.ok:
                raise BenchError(f"{name}'s copy differs from the upstream: {result.summary()}")


def wait_until_run_ends(client: Any, runs_before: int, *, timeout: float) -> dict[str, Any]:
    """Poll the job every 20 ms until it has a finished run beyond ``runs_before``."""
    found: dict[str, Any] = {}

    def ended() -> bool:
        runs = client.get(f"/api/v1/sources/{JOB}", params={"runs": 1}).json()["runs"]
        if len(runs) and runs[0]["id"] > runs_before and runs[0]["ended_at"] is not None:
            found.update(runs[0])
            return True
        return False

    wait_until(ended, timeout=timeout, what="the source run to end", interval=0.02)
    return found
