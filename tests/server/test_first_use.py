"""Concurrent first requests: several fresh sites in one process (each its own uvicorn
event loop, as the mirror tests run them) get their first request to every route family
at the same moment. No answer may be a 500 and the process's warning filters must come
out as they went in (tain.server.routing explains how lazy route building broke both).
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import uvicorn

from tain.config import load
from tain.server.app import create_app
from tain.service.setup import create_site
from tain.service.site import open_site
from tests.conftest import free_port, wait_healthy

SITES = 3
# one path per included router, and the schema; 404, 401 or 405 answers are fine
FIRST_REQUESTS = (
    "/api/v1/site", "/api/v1/repos/x", "/api/v1/repos/x/missing", "/api/v1/agents",
    "/api/v1/status", "/api/v1/sites", "/console/login", "/console/", "/api/v1/sources",
    "/api/v1/keys", "/api/v1/repos/x/log", "/metrics", "/api/v1/alerts", "/x/y",
    "/api/v1/openapi.json", "/api/v1/users", "/api/v1/repos/x/tree", "/console/repos",
)


@contextmanager
def serving(site_dir: Path) -> Iterator[tuple[str, str]]:
    """A fresh site on loopback that has answered nothing but /healthz yet."""
    port = free_port()
    token = create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin", env={})
    site = open_site(load(site_dir, {}))
    server = uvicorn.Server(uvicorn.Config(create_app(site), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        yield url, token
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        site.close()


def first_requests_at_once(sites: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """Every path on every site from its own thread, all released together; the
    interpreter switches threads often meanwhile, so interleavings that are rare in
    production happen here on most runs."""
    jobs = [(url, token, path) for url, token in sites for path in FIRST_REQUESTS]
    barrier = threading.Barrier(len(jobs))
    answers: list[tuple[str, int]] = []
    lock = threading.Lock()

    def ask(url: str, token: str, path: str) -> None:
        with httpx.Client(base_url=url, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            barrier.wait(timeout=60)
            status = client.get(path).status_code
        with lock:
            answers.append((path, status))

    threads = [threading.Thread(target=ask, args=job) for job in jobs]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    return answers


def test_concurrent_first_requests_on_fresh_sites(tmp_path: Path) -> None:
    filters_before = list(warnings.filters)
    with ExitStack() as stack:
        sites = [stack.enter_context(serving(tmp_path / f"site{i}")) for i in range(SITES)]
        answers = first_requests_at_once(sites)
    assert len(answers) == SITES * len(FIRST_REQUESTS)
    assert [a for a in answers if a[1] >= 500] == []
    assert {status for path, status in answers if path == "/api/v1/openapi.json"} == {200}
    leaked = [f for f in warnings.filters if f not in filters_before]
    lost = [f for f in filters_before if f not in warnings.filters]
    assert (leaked, lost) == ([], [])
