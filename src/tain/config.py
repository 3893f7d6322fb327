"""Site configuration: frozen values, parsed and validated once, at the edge.

A site directory holds ``tain.toml``. Relative paths in it are relative to the site
directory. ``load(site_dir, env)`` takes the environment as an argument so tests pass
their own; ``TAIN_DATABASE_URL`` overrides ``[catalog] url``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tain.errors import UsageError

CONFIG_NAME = "tain.toml"


@dataclass(frozen=True)
class StoreConfig:
    data_dirs: tuple[Path, ...]
    copies: int = 1


@dataclass(frozen=True)
class LimitsConfig:
    max_chunk_bytes: int = 4 * 1024 * 1024
    max_upload_request_bytes: int = 64 * 1024 * 1024
    max_commit_changes: int = 100_000
    max_put_bytes: int = 64 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class SiteConfig:
    site_dir: Path
    database_url: str
    store: StoreConfig
    published_dir: Path
    key_file: Path
    listen: str = "127.0.0.1:8080"
    public_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    gc_grace_seconds: int = 3600


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def load(site_dir: Path, env: Mapping[str, str] | None = None) -> SiteConfig:
    env = env or {}
    site_dir = site_dir.resolve()
    path = site_dir / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(
            f"no site at {site_dir}: {CONFIG_NAME} is missing",
            hint=f"create one with 'tain init {site_dir}'",
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc
    return parse(raw, site_dir, env)


def parse(raw: Mapping[str, Any], site_dir: Path, env: Mapping[str, str]) -> SiteConfig:
    def rel(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else site_dir / p

    server = _table(raw, "server")
    catalog = _table(raw, "catalog")
    store = _table(raw, "store")
    limits = _table(raw, "limits")
    data_dirs = tuple(rel(d) for d in _get(store, "data_dirs", list, ["blobs"]))
    copies = _get(store, "copies", int, 1)
    if not data_dirs:
        raise UsageError("[store] data_dirs must name at least one directory")
    if not 1 <= copies <= len(data_dirs):
        raise UsageError(
            f"[store] copies = {copies} needs between 1 and {len(data_dirs)} data_dirs"
        )
    url = env.get("TAIN_DATABASE_URL") or _get(
        catalog, "url", str, sqlite_url(site_dir / "catalog.sqlite3")
    )
    url = _anchor_sqlite(url, site_dir)
    tls_cert = _get(server, "tls_cert", str, "")
    tls_key = _get(server, "tls_key", str, "")
    return SiteConfig(
        site_dir=site_dir,
        database_url=url,
        store=StoreConfig(data_dirs=data_dirs, copies=copies),
        published_dir=rel(_get(server, "published_dir", str, "published")),
        key_file=rel(_get(server, "signing_key", str, "keys/signing.key")),
        listen=_get(server, "listen", str, "127.0.0.1:8080"),
        public_url=_get(server, "public_url", str, "") or None,
        tls_cert=rel(tls_cert) if tls_cert else None,
        tls_key=rel(tls_key) if tls_key else None,
        limits=LimitsConfig(
            max_chunk_bytes=_get(limits, "max_chunk_bytes", int, LimitsConfig.max_chunk_bytes),
            max_upload_request_bytes=_get(
                limits, "max_upload_request_bytes", int, LimitsConfig.max_upload_request_bytes
            ),
            max_commit_changes=_get(
                limits, "max_commit_changes", int, LimitsConfig.max_commit_changes
            ),
            max_put_bytes=_get(limits, "max_put_bytes", int, LimitsConfig.max_put_bytes),
        ),
        gc_grace_seconds=_get(store, "gc_grace_seconds", int, 3600),
    )


def _anchor_sqlite(url: str, site_dir: Path) -> str:
    """Make a relative SQLite path relative to the site directory, not the cwd."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        return sqlite_url(site_dir / url[len(prefix) :])
    return url


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise UsageError(f"[{name}] in {CONFIG_NAME} must be a table")
    return value


def _get(table: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UsageError(f"'{key}' in {CONFIG_NAME} must be of type {kind.__name__}")
    return value


def default_config_text(listen: str = "127.0.0.1:8080") -> str:
    return f"""\
# tain site configuration. Relative paths are relative to this directory.

[server]
listen = "{listen}"
# public_url = "https://mirror.example.org"
published_dir = "published"
signing_key = "keys/signing.key"
# tls_cert = "tls/cert.pem"
# tls_key = "tls/key.pem"

[catalog]
# SQLite by default; PostgreSQL: "postgresql+psycopg://user@host/db"
url = "sqlite:///catalog.sqlite3"

[store]
# Several directories on different disks, each blob kept on `copies` of them.
data_dirs = ["blobs"]
copies = 1
gc_grace_seconds = 3600

[limits]
max_chunk_bytes = 4194304
max_upload_request_bytes = 67108864
max_commit_changes = 100000
"""
