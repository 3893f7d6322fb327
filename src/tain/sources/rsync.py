"""The rsync upstream: Debian's rsync client into the job's staging tree.

Options are those mirror operators use: ``-rlt`` (recursive, links, times; no owners,
groups or permissions, so no root is needed and files stay readable by the site),
``--delete-delay --delay-updates`` (the staging tree changes only at the end),
``--safe-links`` (no link pointing out of the tree), a timeout, an optional bandwidth
limit and include/exclude rules, and ``--max-delete`` derived from the job's limit so an
emptied upstream cannot even empty the staging tree. ``--stats --itemize-changes`` give
the figures. The child dies with the site (PR_SET_PDEATHSIG), so ``kill -9`` of
``tain serve`` leaves no rsync writing on.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tain.core.sourcespec import SourceSpec
from tain.errors import RemoteError, UsageError

RSYNC = "/usr/bin/rsync"
MAX_OUTPUT_LINES = 2000
EXIT_MEANINGS = {
    1: "syntax or usage error", 2: "protocol incompatibility", 3: "errors selecting files",
    5: "error starting client-server protocol", 10: "error in socket I/O",
    11: "error in file I/O", 12: "error in rsync protocol data stream",
    20: "received SIGUSR1 or SIGINT", 23: "partial transfer due to error",
    24: "partial transfer due to vanished source files",
    25: "the --max-delete limit stopped deletions", 30: "timeout in data send/receive",
    35: "timeout waiting for daemon connection",
}
_STATS = {
    "files": re.compile(r"Number of regular files transferred: ([\d,]+)"),
    "bytes": re.compile(r"Total transferred file size: ([\d,]+)"),
    "deleted": re.compile(r"Number of deleted files: ([\d,]+)"),
    "received": re.compile(r"Total bytes received: ([\d,]+)"),
}


@dataclass(frozen=True, slots=True)
class RsyncStats:
    files: int = 0
    bytes: int = 0
    deleted: int = 0
    received: int = 0


def rsync_command(spec: SourceSpec, dest: Path, max_delete: int | None) -> list[str]:
    """The rsync argument list for one run (pure)."""
    args = [RSYNC, "-rlt", "--delete-delay", "--delay-updates", "--safe-links",
            f"--timeout={spec.timeout_seconds}", f"--contimeout={min(spec.timeout_seconds, 60)}",
            "--chmod=Du+rwx,Fu+rw", "--stats", "--itemize-changes", "--no-motd"]
    if spec.bwlimit:
        args.append(f"--bwlimit={spec.bwlimit}")
    if max_delete is not None:
        args.append(f"--max-delete={max_delete}")
    args += [f"--include={p}" for p in spec.includes]
    args += [f"--exclude={p}" for p in spec.excludes]
    return [*args, spec.url, f"{dest}/"]


def parse_stats(output: str) -> RsyncStats:
    """Figures from rsync's ``--stats`` summary (missing ones are 0)."""
    found = {k: int(m.group(1).replace(",", "")) if (m := r.search(output)) else 0
             for k, r in _STATS.items()}
    return RsyncStats(**found)


def rsync_env(spec: SourceSpec, env: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in env.items() if k != "RSYNC_PASSWORD"}
    if spec.password_env:
        if spec.password_env not in env:
            raise UsageError(f"source {spec.name}: the variable {spec.password_env} that "
                             "should hold the rsync password is not set for tain serve")
        out["RSYNC_PASSWORD"] = env[spec.password_env]
    return out


def run_rsync(spec: SourceSpec, dest: Path, *, max_delete: int | None,
              cancel: threading.Event, log: Callable[[str], None]) -> RsyncStats:
    """Run rsync to completion; an exit code not in ``ok_exit_codes`` is an error."""
    args = rsync_command(spec, dest, max_delete)
    log("$ " + " ".join(args))
    lines: list[str] = []
    pid_file = dest.parent / "rsync.pid"
    kill_leftover(pid_file)
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=rsync_env(spec, os.environ), preexec_fn=_die_with_parent,
                          start_new_session=True, text=True, errors="replace") as proc:
        pid_file.write_text(str(proc.pid))
        watcher = threading.Thread(target=_stop_on_cancel, args=(proc, cancel), daemon=True)
        watcher.start()
        for line in proc.stdout or ():
            lines.append(line.rstrip("\n"))
            if len(lines) <= MAX_OUTPUT_LINES:
                log(line.rstrip("\n"))
        code = proc.wait()
    kill_leftover(pid_file)
    output = "\n".join(lines)
    if cancel.is_set():
        raise RemoteError("the run was cancelled (the site is stopping)")
    if code not in spec.ok_exit_codes:
        meaning = EXIT_MEANINGS.get(code, "see man rsync")
        last = next((x for x in reversed(lines) if x.startswith(("rsync:", "@ERROR"))), "")
        detail = f": {last}" if last else ""
        raise RemoteError(f"rsync exited with code {code} ({meaning}){detail}")
    return parse_stats(output)


def _stop_on_cancel(proc: subprocess.Popen[str], cancel: threading.Event) -> None:
    while proc.poll() is None:
        if cancel.wait(0.5):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
            return


def kill_leftover(pid_file: Path) -> None:
    """Kill what is left of an rsync started by a process that died (``kill -9`` of
    the site): the receiver rsync forks does not get the parent-death signal. The
    rsync ran in its own process group, named in ``pid_file``; only a group whose
    members are rsync processes is killed (a reused id is left alone)."""
    try:
        group = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    members = [pid for pid in _group_members(group) if _is_rsync(pid)]
    if members:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _group_members(group: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == group:
            found.append(int(name))
    return found


def _is_rsync(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"rsync")
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the parent (tain serve) dies."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
