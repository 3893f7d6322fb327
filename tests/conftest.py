"""Fixtures for tests that need a running site: a real uvicorn server on loopback
(in a thread, or as a separate process when the test kills it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tain.config import load
from tain.server.app import create_app
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tests.pg import fresh_pg_database
from tests.s3 import MotoServer, empty_bucket, moto_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 30.0, verify: bool | str = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"site at {url} did not become healthy")


@dataclass
class RunningSite:
    url: str
    token: str
    site_dir: Path
    site: Site | None = None

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


@pytest.fixture
def catalog_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment that picks the site's catalog: SQLite by default; a module
    parametrises this fixture indirectly with "postgres" to run on a fresh database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield {}
        return
    with fresh_pg_database() as url:
        yield {"TAIN_DATABASE_URL": url}


BOTH_CATALOGS = pytest.mark.parametrize(
    "catalog_env", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


@dataclass
class NewSite:
    site_dir: Path
    token: str
    port: int
    env: dict[str, str]


@pytest.fixture
def new_site(tmp_path: Path, catalog_env: dict[str, str]) -> NewSite:
    port = free_port()
    site_dir = tmp_path / "site"
    token = create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin", env=catalog_env)
    return NewSite(site_dir, token, port, catalog_env)


@pytest.fixture
def running_site(new_site: NewSite) -> Iterator[RunningSite]:
    """A site served by uvicorn in a thread of this process."""
    yield from _serve(new_site)


@pytest.fixture
def site_without_blobs(new_site: NewSite) -> Iterator[RunningSite]:
    """A site as an older version was: without ``POST /api/v1/repos/R/blobs`` (the
    real app with that one route taken out)."""

    def without_blobs(app: FastAPI) -> ASGIApp:
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].endswith("/blobs"):
                await JSONResponse({"detail": "Not Found"}, 404)(scope, receive, send)
            else:
                await app(scope, receive, send)

        return serve

    yield from _serve(new_site, without_blobs)


def _serve(
    new_site: NewSite, wrap: Callable[[FastAPI], ASGIApp] | None = None
) -> Iterator[RunningSite]:
    site_dir, token, port = new_site.site_dir, new_site.token, new_site.port
    site = open_site(load(site_dir, new_site.env))
    app = create_app(site)
    served: ASGIApp = app if wrap is None else wrap(app)
    config = uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    try:
        yield RunningSite(url, token, site_dir, site)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        site.close()


class SiteProcess:
    """``tain serve`` as a child process, so a test can kill -9 it."""

    def __init__(
        self, site_dir: Path, port: int, *extra_args: str, scheme: str = "http",
        env: dict[str, str] | None = None,
    ) -> None:
        self.site_dir, self.port, self.extra_args = site_dir, port, extra_args
        self.env = {**os.environ, **(env or {})}
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = site_dir / "serve.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tain", "serve", str(self.site_dir),
                 "--listen", f"127.0.0.1:{self.port}", *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )
        try:
            wait_healthy(self.url, verify=False)
        except RuntimeError as exc:
            self.kill()
            raise RuntimeError(f"{exc}; its log: {self.log.read_text()[-2000:]}") from exc

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def site_process(new_site: NewSite) -> Iterator[tuple[SiteProcess, str]]:
    proc = SiteProcess(new_site.site_dir, new_site.port, env=new_site.env)
    proc.start()
    try:
        yield proc, new_site.token
    finally:
        proc.stop()


# -- S3: moto's server on loopback, one per session; a bucket per test -----------------


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A real S3 endpoint (moto's standalone server, a child process) for the session."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def s3_bucket(moto: MotoServer) -> Iterator[str]:
    """A new, empty bucket on the session's S3 endpoint, emptied and deleted after."""
    bucket = moto.new_bucket()
    yield bucket
    empty_bucket(moto.admin, bucket)
