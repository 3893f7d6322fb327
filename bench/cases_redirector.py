"""W8: the redirector's 302s per second against nginx answering the same kind of 302.

Three tain sites: a primary with ``[redirector] enabled`` listing two mirrors in
``[[sites]]`` (each a real ``[mirror]`` site following it). Once both mirrors hold the
primary's head, the primary is restarted so that its start-up round of health checks
sees all three sites right, and the suite waits until ``/api/v1/sites`` shows every
site in rotation. ``check_interval`` is an hour, so no check round runs during the load.
Then h2load sends ``GET /dl/REPO/PATH`` from 32 keep-alive clients, alternating with an
nginx whose location answers ``return 302 http://MIRROR/$1`` (no selection, no catalog,
no access check: the floor for a 302). Every answer must be a 302.
"""

from __future__ import annotations

import functools
import hashlib
import statistics
import urllib.parse
from typing import Any

import httpx

from bench.context import Context
from bench.load import run_load
from bench.measure import LoopbackMeter, ProcSampler
from bench.peers.nginx import Nginx
from bench.procs import BenchError, wait_until
from bench.results import Record, cost_metrics
from bench.sites import SiteHandle, SiteLauncher, create_repo, head_of, push
from bench.stats import summarize
from bench.workloads import FileSpec, write_files

REPO = "pool"
FILES = 200
"""Files behind the /dl/ paths (fewer when the scale asks for fewer request paths)."""
CASE = "302 redirects"


def redirector_config(mirrors: list[SiteHandle]) -> str:
    sites = "".join(f'\n[[sites]]\nname = "{m.name}"\nurl = "{m.url}"\n' for m in mirrors)
    return ('[redirector]\nenabled = true\nname = "primary"\nprimary = true\n'
            'check_interval = "1h"\n' + sites)


def mirror_config(primary: SiteHandle) -> str:
    return f'[mirror]\nupstreams = ["{primary.url}"]\ntoken = "{primary.token}"\npoll = "1s"\n'


class RedirectorCases:
    def __init__(self, ctx: Context, launcher: SiteLauncher) -> None:
        self.ctx, self.launcher = ctx, launcher
        self.nginx: Nginx | None = None
        self.expected: dict[str, str] = {}
        """/dl/ URL path -> SHA-256 of the file behind it."""

    def run(self) -> None:
        try:
            self._run()
        except BenchError as exc:
            for tool in ("tain redirector", "nginx"):
                self.ctx.results.add(Record("W8", CASE, tool, status="failed", reason=str(exc)))
        finally:
            if self.nginx is not None:
                self.nginx.stop()
            self.launcher.stop_all()

    def _run(self) -> None:
        ctx = self.ctx
        primary = self.launcher.create("redirector-primary")
        mirrors = [self.launcher.create(f"mirror{i}", mirror_config(primary)) for i in (1, 2)]
        config = primary.site_dir / "tain.toml"
        config.write_text(config.read_text() + "\n" + redirector_config(mirrors))
        ctx.results.configs["tain redirector"] = redirector_config(mirrors)
        paths = self._prepare(primary, mirrors)
        self.nginx = Nginx(ctx.workdir, ctx.workdir, name="nginx-redirect",
                           location=f"location ~ ^/dl/(.*)$ {{ return 302 {mirrors[0].url}/$1; }}")
        self.nginx.start()
        ctx.results.configs["nginx (return 302)"] = self.nginx.config_text()
        targets = {"tain redirector": (primary.url, primary.pids),
                   "nginx": (self.nginx.url, [self.nginx.daemon.pid])}
        for url, _ in targets.values():
            check_redirect(url, paths[0], expected=self.expected[paths[0]])
        runs: dict[str, list[dict[str, float]]] = {tool: [] for tool in targets}
        for repeat in range(ctx.scale.download_repeats):
            order = list(targets) if repeat % 2 == 0 else list(reversed(targets))
            for tool in order:
                url, pids = targets[tool]
                runs[tool].append(self._load(tool, url, pids, paths))
        for tool, done in runs.items():
            metrics = {k: round(statistics.median(m[k] for m in done), 4) for k in done[0]}
            ctx.results.add(Record("W8", f"{CASE}, {ctx.scale.concurrency} clients", tool,
                                   metrics=metrics, details={"runs": done, "note": (
                                       f"median of {len(done)} runs, alternating servers")}))

    def _prepare(self, primary: SiteHandle, mirrors: list[SiteHandle]) -> list[str]:
        """Primary with the files, mirrors in sync, all sites in rotation; the /dl paths."""
        ctx = self.ctx
        self.launcher.start(primary)
        create_repo(primary, REPO)
        source = ctx.workdir / "redirector-source"
        specs = [FileSpec(f"f{i // 50:02}/file{i:04}.bin", 1024 + i, ctx.seed + 800 + i)
                 for i in range(min(FILES, ctx.scale.small_request_paths))]
        write_files(source, specs)
        push(primary, REPO, source, ctx.workdir / "redirector-push.cache")
        self.expected = {f"/dl/{REPO}/{urllib.parse.quote(s.path)}":
                         hashlib.sha256((source / s.path).read_bytes()).hexdigest()
                         for s in specs}
        head = head_of(primary, REPO)
        for mirror in mirrors:
            self.launcher.start(mirror)
        for mirror in mirrors:
            wait_until(functools.partial(at_revision, mirror, head), timeout=120,
                       what=f"{mirror.name} to reach revision {head}", interval=0.1)
        ctx.log("W8: mirrors in sync; restarting the primary for its start-up health check")
        self.launcher.stop(primary)
        self.launcher.start(primary)
        wait_until(lambda: in_rotation(primary) == 3, timeout=120,
                   what="all three sites in rotation", interval=0.1)
        return list(self.expected)

    def _load(self, tool: str, url: str, pids: list[int],
              paths: list[str]) -> dict[str, float]:
        scale = self.ctx.scale
        with LoopbackMeter() as lo, ProcSampler(pids) as sampler:
            run, summary = run_load(url, paths, scale.redirect_requests, scale.concurrency,
                                    self.ctx.workdir / "load-redirect",
                                    timeout=self.ctx.short_timeout)
        if summary.redirects != scale.redirect_requests or summary.failed:
            raise BenchError(f"{tool}: {summary.redirects} of {summary.requests} requests "
                             f"answered 3xx, {summary.failed} failed")
        metrics = cost_metrics(summary.seconds, run, sampler.usage, lo.bytes)
        lat = summarize([x / 1000 for x in summary.latencies_us])
        metrics.update({"requests": summary.redirects,
                        "requests_per_s": round(summary.redirects / summary.seconds, 1),
                        **{f"{k}_ms": round(lat[k], 3) for k in ("p50", "p90", "p99", "max")}})
        self.ctx.log(f"W8: {tool} {metrics['requests_per_s']:.0f} redirects/s, "
                     f"p50 {metrics['p50_ms']} ms, p99 {metrics['p99_ms']} ms")
        return metrics


def at_revision(site: SiteHandle, revision: int) -> bool:
    return head_of(site, REPO) == revision


def in_rotation(primary: SiteHandle) -> int:
    """How many sites the primary has in rotation for the repository."""
    with primary.client() as c:
        sites = c.get("/api/v1/sites").json()["sites"]
    return sum(1 for s in sites for r in s["repos"] if r["repo"] == REPO and r["in_rotation"])


def check_redirect(base: str, path: str, *, expected: str) -> dict[str, Any]:
    """One GET of ``path``: a 302 whose target serves the file's bytes."""
    try:
        with httpx.Client(timeout=30) as c:
            first = c.get(f"{base}{path}")
            if first.status_code != 302:
                raise BenchError(f"{base}{path} answered {first.status_code}, not 302")
            target = first.headers["location"]
            body = c.get(target)
    except httpx.HTTPError as exc:
        raise BenchError(f"{base}{path}: {type(exc).__name__}: {exc}") from exc
    if body.status_code != 200 or hashlib.sha256(body.content).hexdigest() != expected:
        raise BenchError(f"{target} (redirected from {base}{path}) does not serve the file")
    return {"location": target}
