"""Helpers for the operations tests (scrub, backup, status): sites whose blob store
spans several data directories ("disks"), a site served in a thread, and a ``tain``
application with the operations commands."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
import uvicorn

from tain.cli import backup, scrub, status
from tain.cli.main import TainGroup
from tain.config import CONFIG_NAME, load
from tain.server.app import create_app
from tain.service.site import open_site
from tests.conftest import free_port, wait_healthy


def configure_disks(site_dir: Path, disks: int, copies: int, **sections: str) -> list[Path]:
    """Rewrite the site's tain.toml for ``disks`` data dirs (``disk0``...) holding
    ``copies`` copies of each blob; ``sections`` replace or add whole tables, e.g.
    ``scrub='every = "1s"'``. Returns the data dirs."""
    path = site_dir / CONFIG_NAME
    text = path.read_text()
    names = [f"disk{i}" for i in range(disks)]
    text = re.sub(r'^data_dirs = .*$', f"data_dirs = {names!r}".replace("'", '"'), text,
                  flags=re.M)
    text = re.sub(r"^copies = .*$", f"copies = {copies}", text, flags=re.M)
    for name, body in sections.items():
        header = f"[{name}]"
        if header in text:
            start = text.index(header)
            end = text.find("\n[", start + 1)
            text = text[:start] + f"{header}\n{body}\n" + (text[end:] if end >= 0 else "")
        else:
            text += f"\n{header}\n{body}\n"
    path.write_text(text)
    return [site_dir / name for name in names]


def blob_copies(dirs: list[Path], sha: str) -> list[Path]:
    return [p for d in dirs for p in d.glob(f"blobs/*/{sha}")]


def good_copies(dirs: list[Path], sha: str) -> list[Path]:
    return [p for p in blob_copies(dirs, sha) if sha256_file(p) == sha]


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def rot(path: Path, offset: int = 0) -> None:
    """Flip one byte in place, as a failing disk would, keeping the file's mode and mtime."""
    st = path.stat()
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]) if byte else b"\0")
    path.chmod(st.st_mode & 0o777)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@contextmanager
def serving(site_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the site (as configured now) with uvicorn in a thread; yields its URL."""
    port = free_port()
    site = open_site(load(site_dir, env or {}))
    config = uvicorn.Config(create_app(site), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        site.close()


def ops_app() -> typer.Typer:
    """``tain`` with the commands of the operations modules, registered as main.py does."""
    app = typer.Typer(cls=TainGroup, pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:
        """tain (operations commands)"""

    for module in (scrub, backup, status):
        module.register(app)
    return app
