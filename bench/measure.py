"""What each run costs: wall time, CPU seconds, peak RSS, bytes over loopback.

- A client process (``rsync``, ``tain push``, ``curl``) runs under ``/usr/bin/time -f``,
  which reports its own user/system CPU and peak RSS (the kernel's ``ru_maxrss`` of the
  parent would include our own memory; MEASURING.md).
- A daemon (rsync daemon, ``tain serve``, Syncthing, nginx, lsyncd) is sampled from
  /proc: CPU is utime+stime+cutime+cstime of the daemon plus utime+stime+cutime+cstime
  of its live descendants (so children that exit and are reaped are still counted), and
  peak RSS is the largest sum of RSS over the process tree seen at a sample (every
  ``SAMPLE_S``), so a peak shorter than that can be missed.
- Loopback bytes are the ``lo`` receive counter of /proc/net/dev before and after. Each
  byte on lo is counted once as received (and once more as sent, which we ignore); it
  includes TCP/IP headers and every other process's loopback traffic on the machine
  (databases, other people's tests), so it is an upper bound; the background rate is
  recorded beside it. Tools that count their own payload bytes are reported too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError

SAMPLE_S = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
TIME_FORMAT = "%e %U %S %M"


@dataclass
class ClientRun:
    argv: list[str]
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kib: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def check(self) -> ClientRun:
        if self.returncode != 0:
            raise BenchError(
                f"{' '.join(self.argv[:3])} exited {self.returncode}: {self.stderr.strip()[-500:]}"
            )
        return self


def run_timed(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ClientRun:
    """Run ``argv`` under /usr/bin/time; kill its process group after ``timeout``."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        full = ["/usr/bin/time", "-f", TIME_FORMAT, "-o", report.name, *argv]
        start = time.monotonic()
        proc = subprocess.Popen(
            full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True, text=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise BenchError(f"{argv[0]} did not finish in {timeout:.0f} s") from None
        except BaseException:  # Ctrl-C, SIGTERM: never leave the client running
            _kill_group(proc)
            raise
        wall = time.monotonic() - start
        fields = report.read().strip().splitlines()
    numbers = fields[-1].split() if fields else []
    if len(numbers) != 4:
        raise BenchError(f"/usr/bin/time said {fields!r} for {argv[0]}")
    return ClientRun(
        list(argv), wall, float(numbers[1]), float(numbers[2]), int(numbers[3]),
        proc.returncode, out, err,
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _stat_fields(pid: int) -> tuple[int, float] | None:
    """(ppid, utime+stime+cutime+cstime in seconds) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rindex(b")") + 2 :].split()
    ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
    return int(rest[1]), ticks / CLOCK_TICKS


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


def process_tree(roots: Iterable[int]) -> dict[int, float]:
    """Every live process of the trees below ``roots``, with its CPU seconds."""
    table: dict[int, tuple[int, float]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat_fields(int(name))) is not None:
            table[int(name)] = fields
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    tree: dict[int, float] = {}
    stack = [r for r in roots if r in table]
    while stack:
        pid = stack.pop()
        if pid not in tree:
            tree[pid] = table[pid][1]
            stack.extend(children.get(pid, ()))
    return tree


@dataclass
class DaemonUsage:
    cpu_s: float
    peak_rss_kib: int
    samples: int


class ProcSampler:
    """Samples the process trees below ``roots`` while the ``with`` block runs."""

    def __init__(self, roots: Sequence[int], interval: float = SAMPLE_S) -> None:
        self.roots = list(roots)
        self.interval = interval
        self.peak_rss_kib = 0
        self.samples = 0
        self._cpu_start = 0.0
        self._cpu_last = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        tree = process_tree(self.roots)
        self._cpu_last = sum(tree.values())
        self.peak_rss_kib = max(self.peak_rss_kib, sum(_rss_kib(pid) for pid in tree))
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> ProcSampler:
        self._sample()
        self._cpu_start = self._cpu_last
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()

    @property
    def usage(self) -> DaemonUsage:
        return DaemonUsage(max(0.0, self._cpu_last - self._cpu_start), self.peak_rss_kib,
                           self.samples)


def loopback_bytes() -> int:
    """Bytes received on ``lo`` since boot (/proc/net/dev)."""
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, data = line.partition(":")
            if name.strip() == "lo":
                return int(data.split()[0])
    raise BenchError("no lo interface in /proc/net/dev")


class LoopbackMeter:
    """Loopback bytes received while the ``with`` block runs."""

    def __init__(self) -> None:
        self.start = 0
        self.bytes = 0

    def __enter__(self) -> LoopbackMeter:
        self.start = loopback_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bytes = loopback_bytes() - self.start


def background_loopback_rate(seconds: float = 2.0) -> float:
    """Bytes/s on lo while the suite itself does nothing: the noise under its figures."""
    with LoopbackMeter() as meter:
        time.sleep(seconds)
    return meter.bytes / seconds
