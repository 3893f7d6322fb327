"""A site for monitoring tests: its own config additions and a clock the test moves,
served by uvicorn in a thread (the app is at hand, to register providers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from tain.config import load
from tain.server.app import create_app
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tests.catalog.conftest import FakeClock
from tests.conftest import free_port, wait_healthy


@dataclass
class MonitoredSite:
    url: str
    token: str
    site: Site
    app: FastAPI
    clock: FakeClock


@contextmanager
def monitored_site(tmp_path: Path, extra_toml: str = "") -> Iterator[MonitoredSite]:
    port = free_port()
    site_dir = tmp_path / "site"
    token = create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin", env={})
    config = site_dir / "tain.toml"
    config.write_text(config.read_text() + "\n" + extra_toml)
    clock = FakeClock()
    site = open_site(load(site_dir, {}), clock=clock)
    app = create_app(site)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    try:
        yield MonitoredSite(url, token, site, app, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        site.close()
