"""Real sites and a real agent process on loopback, and ways to compare a repository
with a directory (SHA-256, mode and link target of every path)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tain.client import SiteClient
from tain.core.manifest import Kind
from tain.service.setup import create_site
from tests.conftest import RunningSite, SiteProcess, free_port

REPO = "mirror"
ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0

State = dict[str, tuple[str, int, str]]  # path -> (kind, mode, sha256 or link target)


def wait_for(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(max(0.1, time.monotonic() - started))  # a costly check runs less often


def local_state(root: Path, ignored: Callable[[str], bool] = lambda _: False) -> State:
    """Every path below ``root`` as the site should hold it."""
    out: State = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if ignored(rel):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            st = p.lstat()
            mode = st.st_mode & 0o7777
            if p.is_symlink():
                out[rel] = ("symlink", mode, os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", mode, "")
            else:
                out[rel] = ("file", mode, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def remote_state(url: str, token: str, repo: str = REPO) -> State:
    """The repository's head as the site lists it."""
    out: State = {}
    with SiteClient(url, token) as client:
        for e in client.iter_tree(repo):
            value = e.sha256 if e.kind is Kind.FILE else (e.target or "")
            out[e.path] = (e.kind.value, e.mode, value or "")
    return out


def published_digests(site_dir: Path, repo: str = REPO) -> dict[str, str]:
    """SHA-256 of every file in the published tree (the bytes a mirror serves)."""
    root = (site_dir / "published" / repo).resolve()
    out = {}
    try:
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                p = Path(dirpath) / name
                if not p.is_symlink():
                    digest = hashlib.sha256(p.read_bytes()).hexdigest()
                    out[p.relative_to(root).as_posix()] = digest
    except FileNotFoundError:  # a publish changed the tree under us: look again
        return {}
    return out


def differences(want: State, got: State) -> list[str]:
    lines = [f"missing {p}: {want[p]}" for p in sorted(want.keys() - got.keys())]
    lines += [f"extra {p}: {got[p]}" for p in sorted(got.keys() - want.keys())]
    lines += [f"differs {p}: want {want[p]}, got {got[p]}"
              for p in sorted(want.keys() & got.keys()) if want[p] != got[p]]
    return lines


def wait_identical(
    root: Path, url: str, token: str, *, ignored: Callable[[str], bool] = lambda _: False,
    timeout: float = DEADLINE,
) -> State:
    """Wait until the repository's head equals the directory; return that state."""
    last: list[str] = []

    def same() -> bool:
        want = local_state(root, ignored)
        try:
            got = remote_state(url, token)
        except Exception as exc:  # a site that is starting or stopping
            last[:] = [f"site: {exc}"]
            return False
        last[:] = differences(want, got)
        return not last

    try:
        wait_for(same, "the repository to equal the directory", timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n" + "\n".join(last[:40])) from None
    return local_state(root, ignored)


def head(url: str, token: str, repo: str = REPO) -> int:
    with SiteClient(url, token) as client:
        return int(client.get_repo(repo)["head"])


@dataclass
class Site:
    url: str
    token: str
    site_dir: Path
    process: SiteProcess | None = None


def new_site_process(base: Path, name: str) -> Site:
    port = free_port()
    site_dir = base / name
    token = create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin")
    proc = SiteProcess(site_dir, port)
    proc.start()
    site = Site(proc.url, token, site_dir, proc)
    create_repo(site)
    return site


def create_repo(site: Site | RunningSite, repo: str = REPO) -> None:
    headers = {"Authorization": f"Bearer {site.token}"}
    r = httpx.post(f"{site.url}/api/v1/repos", json={"name": repo}, headers=headers, timeout=30)
    r.raise_for_status()


@pytest.fixture
def site(running_site: RunningSite) -> Site:
    """A site in a thread of the test process, with the repository created."""
    create_repo(running_site)
    return Site(running_site.url, running_site.token, running_site.site_dir)


@pytest.fixture
def two_sites(tmp_path: Path) -> Iterator[tuple[Site, Site]]:
    """Two independent sites, each a child process (so a test can stop them)."""
    first = new_site_process(tmp_path, "site-a")
    try:
        second = new_site_process(tmp_path, "site-b")
    except BaseException:
        first.process.stop()  # type: ignore[union-attr]
        raise
    try:
        yield first, second
    finally:
        for s in (first, second):
            if s.process is not None:
                s.process.stop()


class AgentProcess:
    """``tain agent`` as a child process (killable with SIGKILL, stoppable with SIGTERM)."""

    def __init__(
        self, directory: Path, sites: list[Site], state_dir: Path, *extra: str,
        module: bool = False,
    ) -> None:
        self.directory, self.sites, self.state_dir, self.extra = directory, sites, state_dir, extra
        self.log = state_dir.parent / f"{state_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.module = module  # python -m tain.agent instead of the tain command line

    def command(self, *args: str) -> list[str]:
        if self.module:
            return [sys.executable, "-m", "tain.agent", *args]
        return [sys.executable, "-m", "tests.agent.cli_entry", "agent", *args]

    def start(self, *extra: str) -> None:
        sites = [arg for s in self.sites for arg in ("--site", s.url)]
        env = {**os.environ, "TAIN_TOKEN": self.sites[0].token, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(str(self.directory), *sites, "--repo", REPO, "--state-dir",
                             str(self.state_dir), "--heartbeat", "1s", "--max-backoff", "2s",
                             *self.extra, *extra),
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            )

    def start_config(self, config: Path, env: dict[str, str]) -> None:
        """Start with a configuration file instead of the command-line form."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command("--config", str(config)), stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
            )

    def kill(self) -> None:
        """SIGKILL: no chance to write anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM, the way systemd stops it; returns the exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def status(self) -> dict[str, Any]:
        out = subprocess.run(
            self.command("status", "--state-dir", str(self.state_dir), "--json"),
            capture_output=True, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        records: list[dict[str, Any]] = json.loads(out.stdout)
        return records[0]

    def state(self) -> str:
        """The agent's state ("idle", "syncing", "offline", ...), "" before it has one."""
        try:
            return str(self.status()["state"])
        except subprocess.CalledProcessError:
            return ""

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Makes agent processes; every one still running at the end is stopped."""
    made: list[AgentProcess] = []

    def make(
        directory: Path, sites: list[Site], *extra: str, state: str = "state",
        module: bool = False,
    ) -> AgentProcess:
        agent = AgentProcess(directory, sites, tmp_path / state, *extra, module=module)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.kill()
