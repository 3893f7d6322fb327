"""Real upstreams on loopback for the pull source tests: an rsync daemon and nginx
with autoindex (HTML and JSON), each a child process with its config in tmp; and a
site opened in-process, with a helper that runs one job to its end."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tain.catalog.sources import RunOutcome
from tain.config import CONFIG_NAME, load
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tain.sources.scheduler import run_claimed
from tests.conftest import free_port

OWNER = "test-owner"


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}: {log.read_text()[-2000:]}")


@contextmanager
def rsync_daemon(tmp: Path, module_dir: Path) -> Iterator[str]:
    """``rsync --daemon`` serving ``module_dir`` as module ``pub``; yields rsync://.../pub/.
    Run as root, the daemon reads as ``nobody`` (so an unreadable file is unreadable)."""
    port = free_port()
    uid, gid = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    conf = tmp / "rsyncd.conf"
    log = tmp / "rsyncd.log"
    conf.write_text(
        f"pid file = {tmp / 'rsyncd.pid'}\nlog file = {log}\nuse chroot = no\n"
        f"[pub]\n  path = {module_dir}\n  read only = yes\n"
        f"  uid = {uid}\n  gid = {gid}\n"
    )
    log.touch()
    proc = subprocess.Popen(["rsync", "--daemon", "--no-detach", f"--port={port}",
                             "--address=127.0.0.1", f"--config={conf}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, log)
        yield f"rsync://127.0.0.1:{port}/pub/"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def nginx(tmp: Path, root: Path) -> Iterator[str]:
    """nginx with ``autoindex on`` over ``root`` at /pub/ (HTML) and /json/ (JSON)."""
    port = free_port()
    conf = tmp / "nginx.conf"
    log = tmp / "nginx-error.log"
    temp = tmp / "nginx-tmp"
    temp.mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""  # workers read tmp_path (mode 0700)
    conf.write_text(f"""
{user}
worker_processes 1;
pid {tmp / 'nginx.pid'};
error_log {log};
events {{ worker_connections 64; }}
http {{
  log_format plain '$request_method $request_uri $status';
  access_log {tmp / 'nginx-access.log'} plain;
  client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp};
  uwsgi_temp_path {temp}; scgi_temp_path {temp};
  server {{
    listen 127.0.0.1:{port};
    location /pub/ {{ alias {root}/; autoindex on; }}
    location /json/ {{ alias {root}/; autoindex on; autoindex_format json; }}
  }}
}}
""")
    log.touch()
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class LocalSite:
    site: Site
    site_dir: Path
    token: str


@contextmanager
def local_site(tmp: Path, env: dict[str, str] | None = None, sources: str = "",
               repo: str = "mirror") -> Iterator[LocalSite]:
    """A new site opened in this process (no server), with repository ``repo``."""
    site_dir = tmp / "site"
    token = create_site(site_dir, listen=f"127.0.0.1:{free_port()}", admin="admin",
                        env=env or {})
    if sources:
        with (site_dir / CONFIG_NAME).open("a") as f:
            f.write("\n" + sources)
    site = open_site(load(site_dir, env or {}))
    site.catalog.create_repo(repo, public=True, actor="admin")
    try:
        yield LocalSite(site, site_dir, token)
    finally:
        site.close()


def run_once(site: Site, name: str) -> RunOutcome:
    """Make the job due, take its lease and run it to the end, as a scheduler would."""
    site.catalog.schedule_source(name, site.clock())
    run_id = site.catalog.claim_source(name, OWNER, lease_seconds=60)
    if run_id is None:
        raise AssertionError(f"could not claim {name}")
    return run_claimed(site, name, run_id, OWNER, cancel=threading.Event())


def tree_digests(root: Path) -> dict[str, str]:
    """Path → SHA-256 of every regular file below ``root`` (following the top link)."""
    out = {}
    base = root.resolve()
    for dirpath, _, files in os.walk(base):
        for name in files:
            full = Path(dirpath) / name
            if full.is_symlink():
                out[str(full.relative_to(base))] = "-> " + os.readlink(full)
            else:
                out[str(full.relative_to(base))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


def world_readable_dir(tmp: Path) -> Path:
    """A directory the rsync daemon's user can read: tmp_path's parents may be 0700."""
    path = Path(tempfile.mkdtemp(prefix="tain-upstream-", dir="/tmp"))
    path.chmod(0o755)
    return path


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def empty_dir(root: Path) -> None:
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def wait_for(predicate: object, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def get_json(url: str, token: str, path: str) -> dict[str, object]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        response = c.get(path)
        response.raise_for_status()
        return dict(response.json())
