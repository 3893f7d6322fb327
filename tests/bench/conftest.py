"""Sites for the bench scenarios' smoke tests: the same ``SiteLauncher`` interface as the
suite's ``ProcessSites``, but each site is served by uvicorn in a thread of the test
process (starting three Python processes would take most of the test time budget).
A mirror's long-poll (30 s by default) is cut after 1 s when its upstream stops."""

from __future__ import annotations

import threading
from pathlib import Path

import uvicorn
from bench.procs import wait_until
from bench.sites import SiteHandle, healthy, new_site

from tain.config import load
from tain.server.app import create_app
from tain.service.site import Site, open_site


class ThreadSites:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: dict[str, tuple[uvicorn.Server, threading.Thread, Site]] = {}

    def create(self, name: str, extra_config: str = "") -> SiteHandle:
        return new_site(self.root, name, extra_config)

    def start(self, site: SiteHandle) -> None:
        opened = open_site(load(site.site_dir, {}))
        server = uvicorn.Server(uvicorn.Config(create_app(opened), host="127.0.0.1",
                                               port=site.port, log_level="warning",
                                               timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        self.running[site.name] = (server, thread, opened)
        wait_until(lambda: healthy(site.url), timeout=30, what=f"site {site.name}")

    def stop(self, site: SiteHandle) -> None:
        entry = self.running.pop(site.name, None)
        if entry is None:
            return
        server, thread, opened = entry
        server.should_exit = True
        thread.join(timeout=30)
        opened.close()

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            server, thread, opened = self.running.pop(name)
            server.should_exit = True
            thread.join(timeout=30)
            opened.close()
