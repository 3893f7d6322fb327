"""A site's background threads over its app's lifespans: all of them run while the
app serves, none is left once it stops, and serving the same app again runs them all
again (the change hooks they register do not pile up)."""

from __future__ import annotations

import threading
from pathlib import Path

import uvicorn

from tain.config import CONFIG_NAME, load
from tain.mirror.lifecycle import Replication
from tain.server.app import create_app
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tests.conftest import free_port, wait_healthy

EXPECTED = {"tain-alerts", "tain-stats", "tain-heads", "tain-sources", "tain-health"}


def background_threads() -> set[threading.Thread]:
    """Live tain threads (other tests' leftovers too: compare before and after)."""
    return {t for t in threading.enumerate() if t.name.startswith("tain-")}


def new_site(tmp_path: Path, port: int) -> Site:
    site_dir = tmp_path / "site"
    create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin", env={})
    with (site_dir / CONFIG_NAME).open("a") as config:  # health checks of a site that is down
        config.write(f"""
[redirector]
enabled = true
name = "a"
region = "eu"
primary = true
check_interval = "1h"

[[sites]]
name = "b"
url = "http://127.0.0.1:{free_port()}"
region = "eu"
""")
    return open_site(load(site_dir, {}))


def test_serving_an_app_twice_runs_and_ends_its_threads_each_time(tmp_path: Path) -> None:
    port = free_port()
    site = new_site(tmp_path, port)
    try:
        app = create_app(site)
        for _ in range(2):
            before = background_threads()
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                   log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            wait_healthy(f"http://127.0.0.1:{port}")
            started = background_threads() - before
            assert {t.name for t in started} >= EXPECTED
            assert len(site.on_change) == 1  # the head signer's
            server.should_exit = True
            thread.join(timeout=30)
            assert [t.name for t in started if t.is_alive()] == []
            assert len(site.on_change) == 0
    finally:
        site.close()


def test_replication_stops_safely_before_it_started(tmp_path: Path) -> None:
    site = new_site(tmp_path, free_port())
    try:
        Replication(site).stop()  # a startup that failed before it: nothing to end
        assert len(site.on_change) == 0
    finally:
        site.close()
