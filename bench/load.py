"""W7 downloads: one large file with curl, and many small files with h2load (HTTP/1.1,
32 keep-alive clients on 2 threads, a fixed number of requests; wrk was tried first, but
it always runs for its whole ``-d`` duration, so it cannot make exactly N requests)."""

from __future__ import annotations

import hashlib
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.measure import ClientRun, run_timed
from bench.procs import BenchError

LOAD_THREADS = 2


@dataclass
class BigDownload:
    run: ClientRun
    size: int
    seconds: float

    @property
    def mib_per_s(self) -> float:
        return self.size / self.seconds / (1 << 20)


def download_big(url: str, *, timeout: float) -> BigDownload:
    """GET ``url`` into /dev/null with curl; its own timer gives the transfer time."""
    run = run_timed(
        ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
         url],
        timeout=timeout,
    ).check()
    size, seconds = run.stdout.split()
    return BigDownload(run, int(size), float(seconds))


def sha256_of_url(url: str, *, timeout: float = 300) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        while piece := resp.read(1 << 20):
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


@dataclass
class LoadSummary:
    """What h2load reports for one run, plus percentiles from its per-request log."""

    requests: int
    succeeded: int
    failed: int
    non_2xx: int
    seconds: float
    latencies_us: list[int]
    redirects: int = 0
    """3xx answers (also counted in ``non_2xx``): what the redirector scenario expects."""

    @property
    def requests_per_s(self) -> float:
        return self.succeeded / self.seconds


def parse_h2load(output: str, log_lines: list[str]) -> LoadSummary:
    """Parse h2load's summary; its ``--log-file`` gives each request's time in us."""
    finished = re.search(r"finished in ([\d.]+)(us|ms|s),", output)
    counts = re.search(
        r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", output)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    if not (finished and counts and codes):
        raise BenchError(f"cannot read h2load's summary: {output[-500:]}")
    seconds = float(finished.group(1)) / {"us": 1e6, "ms": 1e3, "s": 1.0}[finished.group(2)]
    latencies = [int(line.split("\t")[2]) for line in log_lines if line.count("\t") >= 2]
    return LoadSummary(
        requests=int(counts.group(1)), succeeded=int(counts.group(2)),
        failed=int(counts.group(3)),
        non_2xx=sum(int(codes.group(i)) for i in (2, 3, 4)),
        seconds=seconds, latencies_us=latencies, redirects=int(codes.group(2)),
    )


def run_load(
    base_url: str, paths: list[str], requests: int, concurrency: int, workdir: Path,
    *, timeout: float,
) -> tuple[ClientRun, LoadSummary]:
    """``requests`` GETs over HTTP/1.1 keep-alive from ``concurrency`` clients (h2load):
    each client walks the list of ``paths`` (URL paths starting with /) in order."""
    workdir.mkdir(parents=True, exist_ok=True)
    uris = workdir / "uris.txt"
    uris.write_text("".join(f"{base_url}{p}\n" for p in paths))
    log = workdir / "requests.log"
    log.unlink(missing_ok=True)
    run = run_timed(
        ["h2load", "--h1", "-n", str(requests), "-c", str(concurrency),
         "-t", str(LOAD_THREADS), "-i", str(uris), f"--log-file={log}"],
        timeout=timeout,
    ).check()
    return run, parse_h2load(run.stdout, log.read_text().splitlines())
