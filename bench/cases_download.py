"""W7: downloads from tain's own endpoint and from nginx serving tain's published tree
(the same files, the same URL paths: nginx's root is the site's ``published/``).

A large file is fetched with curl into /dev/null; small files are fetched by h2load with
32 keep-alive HTTP/1.1 clients. Both servers are checked first (the SHA-256 of the large file and
of every small file in the request list, through each server), and the two are measured
alternately. The redirector's 302s are W8 (cases_redirector.py).
"""

from __future__ import annotations

import os
import random
import statistics
import urllib.parse
from dataclasses import dataclass
from typing import Any

from bench.context import Context
from bench.load import download_big, run_load, sha256_of_url
from bench.measure import LoopbackMeter, ProcSampler
from bench.peers.nginx import Nginx
from bench.peers.tain import TainSite
from bench.procs import BenchError
from bench.results import Record, cost_metrics
from bench.scale import MIB
from bench.stats import summarize
from bench.treesum import digest_file
from bench.workloads import FileSpec, write_files

BIG_REPO = "downloads"
BIG_PATH = "big.iso"


@dataclass
class Server:
    tool: str
    url: str
    pids: list[int]


class DownloadCases:
    def __init__(self, ctx: Context, site: TainSite) -> None:
        self.ctx, self.site = ctx, site
        self.nginx = Nginx(ctx.workdir, site.site_dir / "published")

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.nginx.stop()

    def _run(self) -> None:
        ctx = self.ctx
        big = self._push_big()
        self.nginx.start()
        ctx.results.configs["nginx"] = self.nginx.config_text()
        servers = [Server("tain serve", self.site.url, [self.site.daemon.pid]),
                   Server("nginx", self.nginx.url, [self.nginx.daemon.pid])]
        paths = self._small_paths()
        broken = {s.tool: self._verify(s, big, paths) for s in servers}
        big_url = f"/{BIG_REPO}/{BIG_PATH}"
        self._cases(servers, broken, "large file download", lambda s: self._big(s, big_url))
        self._cases(servers, broken, f"small files, {ctx.scale.concurrency} clients",
                    lambda s: self._small(s, list(paths)))

    def _push_big(self) -> tuple[int, str]:
        """Write the large file, push it into its own repository; returns (size, sha256)."""
        ctx = self.ctx
        source = ctx.workdir / "downloads"
        spec = FileSpec(BIG_PATH, ctx.scale.big_download, ctx.seed + 70)
        write_files(source, [spec])
        self.site.create_repo(BIG_REPO)
        ctx.log(f"W7: pushing the {spec.size / MIB:.0f} MiB file to tain ...")
        os.sync()
        with LoopbackMeter() as lo, ProcSampler([self.site.daemon.pid]) as sampler:
            run, body = self.site.push(source, repo=BIG_REPO, timeout=ctx.long_timeout)
        metrics = cost_metrics(run.wall_s, run, sampler.usage, lo.bytes)
        metrics["mib_per_s"] = round(spec.size / MIB / run.wall_s, 2)
        metrics["payload_bytes"] = int(body["bytes_sent"])
        ctx.results.add(Record("W7", "setup: push of the large file", "tain push",
                               metrics=metrics, details={"note": "no peer: information only"}))
        return spec.size, digest_file(source / BIG_PATH)

    def _small_paths(self) -> dict[str, str]:
        """URL path -> SHA-256 of the small files the requests go to (a seeded sample)."""
        sums = self.ctx.expected()
        small = sorted(p for p in sums if not p.startswith("large/"))
        count = min(self.ctx.scale.small_request_paths, len(small))
        chosen = random.Random(self.ctx.seed + 71).sample(small, count)
        return {f"/bench/{urllib.parse.quote(p)}": sums[p][1] for p in chosen}

    def _verify(self, server: Server, big: tuple[int, str], paths: dict[str, str]) -> str:
        """'' when the server returns the right bytes, else why not."""
        try:
            got = sha256_of_url(f"{server.url}/{BIG_REPO}/{BIG_PATH}")
            if got != big:
                return f"wrong large file: {got} instead of {big}"
            for path, digest in paths.items():
                if sha256_of_url(f"{server.url}{path}")[1] != digest:
                    return f"wrong bytes for {path}"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        return ""

    def _cases(self, servers: list[Server], broken: dict[str, str], case: str,
               measure: Any) -> None:
        runs: dict[str, list[tuple[dict[str, float], dict[str, Any]]]] = {
            s.tool: [] for s in servers}
        errors: dict[str, str] = dict(broken)
        for repeat in range(self.ctx.scale.download_repeats):
            order = servers if repeat % 2 == 0 else list(reversed(servers))
            for server in order:
                if errors.get(server.tool):
                    continue
                try:
                    runs[server.tool].append(measure(server))
                except Exception as exc:
                    errors[server.tool] = f"{type(exc).__name__}: {exc}"
        for server in servers:
            done = runs[server.tool]
            if not done:
                self.ctx.results.add(Record("W7", case, server.tool, status="failed",
                                            reason=errors.get(server.tool) or "not run"))
                continue
            keys = sorted(set(done[0][0]).intersection(*(m for m, _ in done[1:])))
            metrics = {k: round(statistics.median(m[k] for m, _ in done), 4) for k in keys}
            self.ctx.results.add(Record(
                "W7", case, server.tool, metrics=metrics,
                details={"runs": [m for m, _ in done], "extra": [d for _, d in done],
                         "note": f"median of {len(done)} runs, alternating servers"}))

    def _big(self, server: Server, path: str) -> tuple[dict[str, float], dict[str, Any]]:
        with LoopbackMeter() as lo, ProcSampler(server.pids) as sampler:
            result = download_big(f"{server.url}{path}", timeout=self.ctx.short_timeout)
        if result.size != self.ctx.scale.big_download:
            raise BenchError(f"{server.tool} sent {result.size} bytes")
        metrics = cost_metrics(result.seconds, result.run, sampler.usage, lo.bytes)
        metrics["throughput_mib_s"] = round(result.mib_per_s, 1)
        self.ctx.log(f"W7: {server.tool} large file {result.mib_per_s:.0f} MiB/s")
        return metrics, {}

    def _small(self, server: Server, paths: list[str]) -> tuple[dict[str, float], dict[str, Any]]:
        scale = self.ctx.scale
        with LoopbackMeter() as lo, ProcSampler(server.pids) as sampler:
            run, summary = run_load(server.url, paths, scale.small_requests, scale.concurrency,
                                    self.ctx.workdir / "load", timeout=self.ctx.short_timeout)
        if summary.failed or summary.non_2xx or summary.succeeded != scale.small_requests:
            raise BenchError(f"h2load: {summary.succeeded} of {summary.requests} succeeded, "
                             f"{summary.failed} failed, {summary.non_2xx} not 2xx")
        metrics = cost_metrics(summary.seconds, run, sampler.usage, lo.bytes)
        lat = summarize([x / 1000 for x in summary.latencies_us])
        metrics.update({
            "requests": summary.succeeded,
            "requests_per_s": round(summary.requests_per_s, 1),
            **{f"{k}_ms": round(lat[k], 3) for k in ("p50", "p90", "p99", "max") if k in lat},
        })
        self.ctx.log(f"W7: {server.tool} small files {metrics['requests_per_s']:.0f} req/s")
        return metrics, {}
