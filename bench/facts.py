"""Facts about the machine and the tools, written into every result file."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

VERSION_COMMANDS = {
    "rsync": ["rsync", "--version"],
    "lsyncd": ["lsyncd", "--version"],
    "syncthing": ["syncthing", "--version"],
    "nginx": ["nginx", "-v"],
    "h2load": ["h2load", "--version"],
    "curl": ["curl", "--version"],
}

CAVEATS = [
    "warm cache: the page cache cannot be dropped on this machine; every tool reads a source "
    "that is in memory",
    "2 shared cores: absolute times drift between runs; compare ratios measured in the same "
    "run (tools alternate case by case, repeated cases report medians)",
    "rsync does not fsync what it writes; tain fsyncs every blob before it acknowledges a "
    "commit; Syncthing fsyncs by default (disableFsync=false); lsyncd uses rsync",
    "lo_bytes is the lo receive counter of /proc/net/dev: whole-machine loopback traffic "
    "(other processes too) including TCP/IP headers, each byte counted once; see "
    "meta.background_lo_bytes_per_s for the noise under it",
    "payload_bytes is each tool's own count: rsync --stats total sent + received, "
    "Syncthing's connection in + out totals, tain push's bytes_sent (compressed chunk bytes "
    "only: its JSON requests are not counted)",
    "daemon CPU and RSS are sampled from /proc every 0.1 s (RSS peaks shorter than that can "
    "be missed); client CPU and peak RSS come from /usr/bin/time",
    "file contents are pseudo-random (incompressible)",
    "before each measured sync the suite calls sync(2), untimed, so that no tool pays for the "
    "writeback of data written before its turn (the generator's, or an earlier tool's "
    "unsynced writes)",
    "W8: nginx's return 302 does no lookup, access check or site selection: the floor for a "
    "302 on this machine, not a rival redirector",
    "W9: both mirrors follow the primary at once on the same 2 cores; the rsync loop's small "
    "changes differ in size (its quick check compares size and whole-second mtime)",
    "W10: a tain source run also hashes every new file, stores it as a versioned blob "
    "(fsynced) and commits a signed revision; plain rsync -rlt does none of that",
]


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=30)
        status = ["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain", "src"]
        dirty = subprocess.run(status, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() + (" (src/ has uncommitted changes)" if dirty else "")


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,OPTIONS", "-T", str(path)],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out


def machine_facts(workdir: Path) -> dict[str, Any]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "workdir": str(workdir),
        "workdir_filesystem": _filesystem(workdir),
        "load_average_at_start": list(os.getloadavg()),
        "page_cache": "warm cache (cannot be dropped here)",
    }


def tool_versions() -> dict[str, str]:
    versions = {name: _first_line(argv) for name, argv in VERSION_COMMANDS.items()}
    try:
        tain = metadata.version("tain")
    except metadata.PackageNotFoundError:
        tain = "not installed"
    versions["tain"] = f"{tain} at {_git_commit()}"
    return versions
