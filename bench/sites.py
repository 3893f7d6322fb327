"""tain sites for the scenarios that need several of them (redirector, mirror, source).

A scenario asks a ``SiteLauncher`` for sites: ``create`` writes a new site directory (the
configuration ``tain init`` writes, plus the scenario's own TOML sections appended) and
``start`` serves it. ``ProcessSites`` runs each site as ``python -m tain serve`` in its own
process group, as the rest of the suite does; tests/bench runs the same scenarios against
sites served in threads (same interface) to stay within the test time budget.
"""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.procs import LOOPBACK, Daemon, free_port, wait_until
from tain.client import SiteClient
from tain.config import CONFIG_NAME
from tain.push.pusher import push_directory
from tain.service.setup import create_site


@dataclass
class SiteHandle:
    name: str
    site_dir: Path
    port: int
    token: str
    pids: list[int] = field(default_factory=list)
    """Processes serving the site (sampled for CPU and memory); empty when in-thread."""

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def published(self, repo: str) -> Path:
        return self.site_dir / "published" / repo

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})


class SiteLauncher(Protocol):
    def create(self, name: str, extra_config: str = "") -> SiteHandle: ...

    def start(self, site: SiteHandle) -> None: ...

    def stop(self, site: SiteHandle) -> None: ...

    def stop_all(self) -> None: ...


def new_site(root: Path, name: str, extra_config: str, port: int | None = None) -> SiteHandle:
    """A site directory as ``tain init`` makes it, with ``extra_config`` appended."""
    port = port or free_port()
    site_dir = root / name
    token = create_site(site_dir, listen=f"{LOOPBACK}:{port}", admin="admin", env={})
    if extra_config:
        config = site_dir / CONFIG_NAME
        config.write_text(config.read_text() + "\n" + extra_config)
    return SiteHandle(name, site_dir, port, token)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


STOP_TIMEOUT = 5.0
"""SIGKILL after this: a primary waits for its mirrors' long-polls (up to 30 s) to end."""


class ProcessSites:
    """Each site is ``python -m tain serve SITE`` in its own process group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemons: dict[str, Daemon] = {}

    def create(self, name: str, extra_config: str = "") -> SiteHandle:
        return new_site(self.root, name, extra_config)

    def start(self, site: SiteHandle) -> None:
        daemon = Daemon(f"tain serve ({site.name})",
                        [sys.executable, "-m", "tain", "serve", str(site.site_dir)],
                        log=self.root / f"{site.name}.log")
        self.daemons[site.name] = daemon.start()

        def ready() -> bool:
            daemon.check_alive()
            return healthy(site.url)

        wait_until(ready, timeout=60, what=daemon.name)
        site.pids = [daemon.pid]

    def stop(self, site: SiteHandle) -> None:
        daemon = self.daemons.pop(site.name, None)
        if daemon is not None:
            daemon.stop(timeout=STOP_TIMEOUT)
        site.pids = []

    def stop_all(self) -> None:
        for daemon in reversed(list(self.daemons.values())):
            daemon.stop(timeout=STOP_TIMEOUT)
        self.daemons.clear()


def create_repo(site: SiteHandle, repo: str) -> None:
    with site.client() as c:
        c.post("/api/v1/repos", json={"name": repo, "public": True}).raise_for_status()


def head_of(site: SiteHandle, repo: str) -> int:
    """The repository's head revision on ``site``; -1 when it does not hold it (yet)."""
    with site.client() as c:
        r = c.get(f"/api/v1/repos/{repo}")
    return int(r.json()["head"]) if r.status_code == 200 else -1


def push(site: SiteHandle, repo: str, source: Path, cache: Path) -> dict[str, Any]:
    """Push ``source`` into ``repo`` (tain's own push, in this process); the result."""
    with SiteClient(site.url, site.token) as client:
        result = push_directory(client, repo, source, cache_path=cache)
    return {"revision": result.revision, "added": result.added, "changed": result.changed}
