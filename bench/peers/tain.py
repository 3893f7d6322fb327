"""tain: one site (``tain init`` + ``tain serve`` on a free loopback port), one public
repository, ``tain push`` as the client, and the agent when it can be started.

The site runs with the configuration ``tain init`` writes (SQLite catalog, one blob
directory, every blob fsynced before a commit is acknowledged).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from bench.measure import ClientRun, run_timed
from bench.procs import LOOPBACK, BenchError, Daemon, free_port, wait_until

TAIN = [sys.executable, "-m", "tain"]
AGENT = [sys.executable, "-m", "tain.agent"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class TainSite:
    def __init__(self, workdir: Path, repo: str = "bench") -> None:
        self.dir = workdir / "tain"
        self.site_dir = self.dir / "site"
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.repo = repo
        self.token = ""
        self.daemon = Daemon("tain serve", [*TAIN, "serve", str(self.site_dir)],
                             log=self.dir / "serve.log")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "TAIN_SITE": self.url, "TAIN_TOKEN": self.token}

    def published(self, repo: str | None = None) -> Path:
        return self.site_dir / "published" / (repo or self.repo)

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [*TAIN, "init", str(self.site_dir), "--listen", f"{LOOPBACK}:{self.port}"],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout
        match = re.search(r"admin token.*:\s*(\S+)\s*$", out, re.MULTILINE)
        if not match:
            raise BenchError(f"no admin token in the output of tain init: {out!r}")
        self.token = match.group(1)
        self.daemon.start()
        wait_until(self._ready, timeout=60, what="tain serve")
        self.create_repo(self.repo)

    def _ready(self) -> bool:
        self.daemon.check_alive()
        return _healthy(self.url)

    def create_repo(self, name: str) -> None:
        subprocess.run([*TAIN, "repo", "create", name, "--public"], env=self.env,
                       capture_output=True, text=True, timeout=60, check=True)

    def stop(self) -> None:
        self.daemon.stop()

    def config_text(self) -> str:
        try:
            return (self.site_dir / "tain.toml").read_text()
        except OSError:
            return ""

    def push(
        self, source: Path, *, repo: str | None = None, timeout: float
    ) -> tuple[ClientRun, dict[str, Any]]:
        """``tain push SOURCE --json`` with a hash cache kept per repository."""
        name = repo or self.repo
        cache = self.dir / f"push-cache-{name}.sqlite3"
        run = run_timed(
            [*TAIN, "push", str(source), "-r", name, "--json", "--cache", str(cache)],
            env=self.env, timeout=timeout,
        ).check()
        return run, json.loads(run.stdout)

    def agent_available(self) -> tuple[bool, str]:
        """Whether ``python -m tain.agent`` exists yet (it is being written)."""
        try:
            proc = subprocess.run([*AGENT, "--help"], capture_output=True, text=True,
                                  timeout=60)
        except subprocess.TimeoutExpired:
            return False, "python -m tain.agent --help did not answer in 60 s"
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return False, f"python -m tain.agent --help exited {proc.returncode}: {last}"
        return True, ""

    def agent(self, source: Path, repo: str, log: Path) -> Daemon:
        return Daemon(
            f"tain agent ({repo})",
            [*AGENT, str(source), "--site", self.url, "--repo", repo],
            log=log, env=self.env,
        )
