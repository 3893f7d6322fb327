"""Sites on loopback for the replication tests: a primary and mirrors, each a real
uvicorn server in a thread with its own site directory and SQLite catalog."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tain.config import CONFIG_NAME, load
from tain.server.app import create_app
from tain.service.setup import create_site
from tain.service.site import open_site
from tests.agent.conftest import agents  # noqa: F401 - a fixture, for test_promote
from tests.conftest import RunningSite, free_port, wait_healthy


class Sites:
    """Starts sites and stops them all at the end."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self._running: list[tuple[uvicorn.Server, threading.Thread, RunningSite]] = []

    def create(self, name: str, *, mirror_of: RunningSite | None = None,
               token: str | None = None) -> tuple[Path, str, int]:
        port = free_port()
        site_dir = self.root / name
        admin = create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin", env=self.env)
        if mirror_of is not None:
            add_mirror_section(site_dir, mirror_of.url, token or mirror_of.token)
        return site_dir, admin, port

    def start(self, site_dir: Path, token: str, port: int) -> RunningSite:
        site = open_site(load(site_dir, self.env))
        server = uvicorn.Server(uvicorn.Config(create_app(site), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        running = RunningSite(url, token, site_dir, site)
        self._running.append((server, thread, running))
        return running

    def new(self, name: str, *, mirror_of: RunningSite | None = None,
            via: str | None = None) -> RunningSite:
        """A new site; with ``via`` (a proxy URL) the mirror follows through it."""
        site_dir, token, port = self.create(name, mirror_of=mirror_of)
        if via and mirror_of:
            config = site_dir / CONFIG_NAME
            config.write_text(config.read_text().replace(mirror_of.url, via))
        return self.start(site_dir, token, port)

    def stop(self, running: RunningSite) -> None:
        for server, thread, r in list(self._running):
            if r is running:
                server.should_exit = True
                thread.join(timeout=30)
                if r.site is not None:
                    r.site.close()
                self._running.remove((server, thread, r))

    def stop_all(self) -> None:
        for _, _, r in reversed(list(self._running)):
            self.stop(r)


def add_mirror_section(site_dir: Path, upstream: str, token: str) -> None:
    config = site_dir / CONFIG_NAME
    config.write_text(config.read_text() + f'\n[mirror]\nupstreams = ["{upstream}"]\n'
                      f'token = "{token}"\npoll = "1s"\n')


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    s = Sites(tmp_path, {})
    try:
        yield s
    finally:
        s.stop_all()


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> object:
    """Poll ``condition`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


def head_of(site: RunningSite, repo: str) -> int:
    with site.client() as c:
        r = c.get(f"/api/v1/repos/{repo}")
        return int(r.json()["head"]) if r.status_code == 200 else -1


def put(site: RunningSite, repo: str, path: str, data: bytes) -> httpx.Response:
    import hashlib
    with site.client() as c:
        return c.put(f"/{repo}/{path}", content=data,
                     headers={"X-Tain-SHA256": hashlib.sha256(data).hexdigest()})


def trace_of(site: RunningSite, repo: str) -> dict[str, object] | None:
    with site.client() as c:
        traces = c.get("/api/v1/mirror").json()["traces"]
    return next((t for t in traces if t["repo"] == repo), None)
