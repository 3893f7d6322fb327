"""A site for console tests, shared by a module (one site, one uvicorn thread): an
admin ``admin`` with a password, a repository ``docs`` with two revisions of
``guide/readme.txt``, and a read-only user ``reader``."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from tain.config import load
from tain.server.app import create_app
from tain.service.passwords import hash_password
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tests.conftest import free_port, wait_healthy

ADMIN_PASSWORD = "correct horse battery"
READER_PASSWORD = "reader password 1"


@dataclass
class ConsoleSite:
    url: str
    token: str
    site_dir: Path
    site: Site

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"})

    def browser(self) -> httpx.Client:
        """A cookie-keeping client, like a browser that does not run scripts."""
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)

    @contextmanager
    def sign_in(self, user: str = "admin", password: str = ADMIN_PASSWORD,
                ) -> Iterator[httpx.Client]:
        with self.browser() as client:
            answer = post_login(client, username=user, password=password)
            assert answer.status_code == 303, answer.text
            yield client


def post_login(client: httpx.Client, headers: dict[str, str] | None = None,
               **fields: str) -> httpx.Response:
    """Sign in the way a browser does: fetch the form (and its CSRF cookie), post it."""
    form = client.get("/console/login")
    assert form.status_code == 200, form.text
    return client.post("/console/login", headers=headers,
                       data={"csrf": csrf_of(form.text), **fields})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def put_file(api: httpx.Client, repo: str, path: str, body: bytes) -> int:
    answer = api.put(f"/{repo}/{path}", content=body)
    assert answer.status_code in (200, 201), answer.text
    number = answer.json()["revision"]
    return int(number["number"] if isinstance(number, dict) else number)


@pytest.fixture(scope="module")
def console_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    site_dir = tmp_path_factory.mktemp("console") / "site"
    port = free_port()
    token = create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin", env={})
    site = open_site(load(site_dir, {}))
    site.catalog.set_password("admin", hash_password(ADMIN_PASSWORD), actor="test")
    server = uvicorn.Server(uvicorn.Config(create_app(site), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    running = ConsoleSite(url, token, site_dir, site)
    with running.api() as api:
        assert api.post("/api/v1/repos", json={"name": "docs"}).status_code == 201
        put_file(api, "docs", "guide/readme.txt", b"first version\n")
        put_file(api, "docs", "guide/readme.txt", b"second version, longer\n")
        put_file(api, "docs", "notes.txt", b"notes\n")
        beat = {"agent_id": "files-1", "repo": "docs", "host": "files.example.org",
                "directory": "/srv/docs", "version": "0.1.0", "queue_length": 2,
                "last_revision": 3, "current_site": url}
        assert api.post("/api/v1/agents/heartbeat", json=beat).status_code == 200
        assert api.post("/api/v1/users", json={"name": "reader"}).status_code == 201
        assert api.put("/api/v1/grants", json={"user": "reader", "repo": "docs",
                                               "role": "read"}).status_code == 200
        assert api.put("/api/v1/users/reader/password",
                       json={"password": READER_PASSWORD}).status_code == 200
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        site.close()
