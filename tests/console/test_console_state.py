"""The console's state (the session manager that counts failed sign-ins, the templates)
is one per app, even when the first requests come at once from many threads."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request

from tain.config import load
from tain.server.app import create_app
from tain.server.console.state import ConsoleState, console_state
from tain.service.setup import create_site
from tain.service.site import Site, open_site

THREADS = 24
ROUNDS = 3  # a fresh app each


def test_first_console_requests_at_once_share_one_state(tmp_path: Path) -> None:
    create_site(tmp_path / "site", listen="127.0.0.1:0", admin="admin", env={})
    site = open_site(load(tmp_path / "site", {}))
    try:
        for _ in range(ROUNDS):
            check_one_state(create_app(site), site)
    finally:
        site.close()


def check_one_state(app: FastAPI, site: Site) -> None:
    """All threads, released at once, get the same state from a fresh app."""
    barrier = threading.Barrier(THREADS)
    seen: list[ConsoleState] = []

    def first_request() -> None:
        request = Request({"type": "http", "app": app, "headers": []})
        barrier.wait(timeout=30)
        seen.append(console_state(request))

    threads = [threading.Thread(target=first_request) for _ in range(THREADS)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: races show on most runs
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        sys.setswitchinterval(interval)
    assert len(seen) == THREADS
    assert len({id(state) for state in seen}) == 1
    assert seen[0].site is site
