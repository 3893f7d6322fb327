"""W9: mirror propagation. Time from a commit acknowledged by the primary until a
mirror serves it: a tain mirror (``[mirror]`` with its defaults: long-poll 30 s, full
check every 60 s) against the classic way, an rsync poll loop (``rsync -rlt --delete``
from the primary's published tree, served by an rsync daemon, every 1 s).

Both mirrors follow the same primary at the same time, so each commit is measured for
both. Before each commit the suite waits a seeded random fraction of the poll interval,
so commits fall at every phase of the rsync loop. Cases: (a) one small file changed
(``PUT``), (b) ``mirror_bulk_files`` new files in one push. The tain mirror is polled
every 5 ms over HTTP until it serves the new bytes; the rsync mirror's arrival is the end
of the first rsync run after which the directory holds them. After each bulk round both
mirrors are compared with the source, file by file (SHA-256).
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.context import Context
from bench.peers.rsync import RsyncDaemon
from bench.peers.rsync_poll import RsyncPollMirror
from bench.procs import BenchError, wait_until
from bench.results import Record
from bench.sites import SiteHandle, SiteLauncher, create_repo, head_of, push
from bench.stats import summarize
from bench.treesum import TreeSums, compare, digest_tree
from bench.workloads import FileSpec, write_files

REPO = "deb"
SMALL = "small.txt"
POLL_INTERVAL = 1.0
TAIN, RSYNC = "tain mirror", "rsync poll loop"


class MirrorCases:
    def __init__(self, ctx: Context, launcher: SiteLauncher, mirror_settings: str = "",
                 poll_interval: float = POLL_INTERVAL) -> None:
        """``mirror_settings``: TOML lines added to ``[mirror]``; the suite adds none and
        polls every second (tests/bench shortens both to stay fast)."""
        self.ctx, self.launcher = ctx, launcher
        self.mirror_settings, self.interval = mirror_settings, poll_interval
        self.dir = ctx.workdir / "w9"
        self.source = self.dir / "source"
        self.rsyncd = RsyncDaemon(self.dir)
        self.poll: RsyncPollMirror | None = None
        self.rng = random.Random(ctx.seed + 900)
        self.latencies: dict[tuple[str, str], list[float]] = {}

    def run(self) -> None:
        try:
            self._run()
        except BenchError as exc:
            for tool in (TAIN, RSYNC):
                self.ctx.results.add(Record("W9", "mirror propagation", tool, status="failed",
                                            reason=str(exc)))
        finally:
            if self.poll is not None:
                self.poll.stop()
            self.rsyncd.stop()
            self.launcher.stop_all()

    def _run(self) -> None:
        ctx = self.ctx
        primary, mirror = self._start_sites()
        self.rsyncd.add_module("published", primary.published(REPO))
        self.rsyncd.start()
        self.poll = RsyncPollMirror(self.rsyncd.url("published"), self.dir / "rsync-mirror",
                                    self.interval)
        ctx.results.configs["rsync poll loop"] = (
            f"while true; do {' '.join(self.poll.argv)}; sleep {self.interval:g}; done")
        self.poll.start()
        self.poll.expect(lambda: True)
        self.poll.arrival(timeout=ctx.short_timeout)
        small = f"small change, {ctx.scale.mirror_small_rounds} rounds"
        for i in range(ctx.scale.mirror_small_rounds):
            self._small_round(primary, mirror, small, i)
        bulk = f"{ctx.scale.mirror_bulk_files} new files, {ctx.scale.mirror_bulk_rounds} rounds"
        for r in range(ctx.scale.mirror_bulk_rounds):
            self._bulk_round(primary, mirror, bulk, r)
        for (case, tool), values in self.latencies.items():
            stats = summarize(values)
            ctx.results.add(Record("W9", case, tool, metrics={
                "p50_s": round(stats["p50"], 4), "p99_s": round(stats["p99"], 4),
                "max_s": round(stats["max"], 4), "rounds": len(values)},
                details={"latencies_s": [round(v, 4) for v in values],
                         "note": "from the primary's acknowledgement of the commit"}))

    def _start_sites(self) -> tuple[SiteHandle, SiteHandle]:
        primary = self.launcher.create("w9-primary")
        mirror = self.launcher.create("w9-mirror", f'[mirror]\nupstreams = ["{primary.url}"]\n'
                                      f'token = "{primary.token}"\n{self.mirror_settings}')
        self.ctx.results.configs["tain mirror"] = (
            f"[mirror] upstreams, token; {self.mirror_settings or 'defaults otherwise'}")
        self.launcher.start(primary)
        create_repo(primary, REPO)
        write_files(self.source, [FileSpec(f"base/f{i:03}.bin", 2048, self.ctx.seed + 901 + i)
                                  for i in range(min(100, self.ctx.scale.mirror_bulk_files))])
        (self.source / SMALL).write_bytes(b"start\n")
        push(primary, REPO, self.source, self.dir / "push.cache")
        head = head_of(primary, REPO)
        self.launcher.start(mirror)
        wait_until(lambda: head_of(mirror, REPO) == head, timeout=120,
                   what="the tain mirror's first sync", interval=0.1)
        self.ctx.log("W9: the tain mirror holds the primary's head")
        return primary, mirror

    def _commit_then_wait(self, case: str, mirror: SiteHandle, commit: Callable[[], object],
                          url_path: str, data: bytes, rsync_target: Callable[[], bool]) -> None:
        assert self.poll is not None
        time.sleep(self.rng.uniform(0, self.interval))  # a random phase of the rsync loop
        self.poll.expect(rsync_target)
        commit()
        acked = time.monotonic()
        served = wait_served(mirror, url_path, data, timeout=self.ctx.short_timeout)
        arrived = self.poll.arrival(timeout=self.ctx.short_timeout)
        self.latencies.setdefault((case, TAIN), []).append(served - acked)
        self.latencies.setdefault((case, RSYNC), []).append(arrived - acked)
        self.ctx.log(f"W9: {case}: tain {served - acked:.3f} s, rsync {arrived - acked:.3f} s")

    def _small_round(self, primary: SiteHandle, mirror: SiteHandle, case: str, i: int) -> None:
        # a different size each round: rsync's quick check (size and mtime, in seconds)
        # would miss a same-size change made within the same second as the last one
        data = f"small change {i}\n".encode() + b"." * i
        target = self.dir / "rsync-mirror" / SMALL

        def commit() -> None:
            with primary.client() as c:
                c.put(f"/{REPO}/{SMALL}", content=data, headers={
                    "X-Tain-SHA256": hashlib.sha256(data).hexdigest()}).raise_for_status()

        self._commit_then_wait(case, mirror, commit, f"/{REPO}/{SMALL}", data,
                               lambda: _read(target) == data)
        (self.source / SMALL).write_bytes(data)  # so that later pushes keep it

    def _bulk_round(self, primary: SiteHandle, mirror: SiteHandle, case: str, r: int) -> None:
        count = self.ctx.scale.mirror_bulk_files
        specs = [FileSpec(f"bulk{r}/d{i // 100:02}/f{i:04}.bin", 1024 + (i * 37) % 3072,
                          self.ctx.seed + 10_000 * (r + 1) + i) for i in range(count)]
        write_files(self.source, specs)
        last = specs[-1].path
        data = (self.source / last).read_bytes()
        mirror_dir = self.dir / "rsync-mirror"

        def rsync_has_all() -> bool:
            return all(_size(mirror_dir / s.path) == s.size for s in specs)

        self._commit_then_wait(case, mirror,
                               lambda: push(primary, REPO, self.source, self.dir / "push.cache"),
                               f"/{REPO}/{last}", data, rsync_has_all)
        expected = digest_tree(self.source)
        for name, tree in ((TAIN, mirror.published(REPO)), (RSYNC, mirror_dir)):
            wait_until(functools.partial(_same, expected, tree),
                       timeout=60, what=f"{name} to equal the source", interval=0.2)


def wait_served(site: SiteHandle, url_path: str, data: bytes, *, timeout: float) -> float:
    """Poll ``site`` every 5 ms until it serves ``data`` at ``url_path``; when it did."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=site.url, timeout=10) as c:
        while time.monotonic() < deadline:
            r = c.get(url_path)
            if r.status_code == 200 and r.content == data:
                return time.monotonic()
            time.sleep(0.005)
    raise BenchError(f"{site.name} did not serve {url_path} within {timeout:.0f} s")


def _same(expected: TreeSums, tree: Path) -> bool:
    return compare(expected, digest_tree(tree)).ok


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
