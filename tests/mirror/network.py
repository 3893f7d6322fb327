"""A network of real sites on loopback for the health and redirector tests: each one
``tain serve``'s app under uvicorn in a thread, stoppable and restartable on its port.
In-sync mirrors are simulated by pushing the same content to independent sites."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn

from tain.config import CONFIG_NAME, load
from tain.server.app import create_app
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tests.conftest import free_port, wait_healthy


class Member:
    """One site: created at once, served with ``start()``, stopped with ``stop()``."""

    def __init__(self, root: Path, name: str, *, clock: Callable[[], float] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.site_dir = root / name
        self.env = env or {}
        self.token = create_site(self.site_dir, listen=f"127.0.0.1:{self.port}",
                                 admin="admin", env=self.env)
        self.clock = clock
        self.site: Site | None = None
        self.app = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def configure(self, text: str) -> None:
        """Append TOML to the site's tain.toml (before ``start``)."""
        path = self.site_dir / CONFIG_NAME
        path.write_text(path.read_text() + "\n" + text)

    def start(self) -> None:
        config = load(self.site_dir, self.env)
        self.site = open_site(config, clock=self.clock) if self.clock else open_site(config)
        self.app = create_app(self.site)
        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                               log_level="warning"))
        self._server = server
        self._thread = threading.Thread(target=server.run, daemon=True)
        self._thread.start()
        wait_healthy(self.url)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        if self.site is not None:
            self.site.close()
        self._server = self._thread = self.site = None

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {token or self.token}"})

    def blob_file(self, sha256: str) -> Path:
        """The stored copy of a blob (data dir ``blobs``, the default)."""
        return self.site_dir / "blobs" / "blobs" / sha256[:2] / sha256
