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
from typing import TYPE_CHECKING, Any

from tain.config_mirror import MirrorConfig, SigningConfig, parse_mirror, parse_signing
from tain.core.monitoring import MonitoringConfig, parse_monitoring
from tain.core.sourcespec import SourcesConfig, parse_sources_config
from tain.errors import UsageError

if TYPE_CHECKING:
    from tain.config_sites import RedirectorConfig

CONFIG_NAME = "tain.toml"


@dataclass(frozen=True)
class S3Config:
    """An S3-compatible bucket. Credentials left empty come from the usual AWS
    environment (AWS_ACCESS_KEY_ID, profiles, instance roles)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    presign_downloads: bool = False
    presign_ttl_seconds: int = 300


@dataclass(frozen=True)
class StoreConfig:
    data_dirs: tuple[Path, ...]
    copies: int = 1
    kind: str = "local"  # "local" or "s3"
    s3: S3Config | None = None


@dataclass(frozen=True)
class ScrubConfig:
    every_seconds: int | None = None  # None: no scheduled scrub
    fraction: float = 1.0  # share of blobs read per run, rotating
    rate_limit_bytes: int | None = None  # bytes per second, None: unlimited


@dataclass(frozen=True)
class BackupConfig:
    every_seconds: int | None = None  # None: no scheduled backup
    dest: str | None = None  # a directory, or s3://bucket/prefix
    keep: int = 7  # scheduled backups kept
    blobs: bool = True  # include blobs (incrementally)


@dataclass(frozen=True)
class ConsoleConfig:
    """The web console's sign-in: session lifetime, idle timeout, failed sign-ins
    allowed per user and per address within ``lockout_seconds``."""

    session_seconds: int = 12 * 3600
    idle_seconds: int = 3600
    max_failures: int = 5
    lockout_seconds: int = 300


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
    publish: bool = True
    scrub: ScrubConfig = field(default_factory=ScrubConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    redirector: RedirectorConfig | None = None  # [[sites]] and [redirector]; see config_sites
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    mirror: MirrorConfig | None = None  # set: this site follows an upstream
    signing: SigningConfig = field(default_factory=SigningConfig)
    lease_seconds: int = 30  # site-wide background work: docs/scale-out.md


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
    kind = _get(store, "kind", str, "local")
    if kind not in ("local", "s3"):
        raise UsageError(f"[store] kind must be 'local' or 's3', not {kind!r}")
    if not data_dirs:
        raise UsageError("[store] data_dirs must name at least one directory")
    if not 1 <= copies <= len(data_dirs):
        raise UsageError(
            f"[store] copies = {copies} needs between 1 and {len(data_dirs)} data_dirs"
        )
    s3 = _s3(_table(store, "s3")) if kind == "s3" else None
    url = env.get("TAIN_DATABASE_URL") or _get(
        catalog, "url", str, sqlite_url(site_dir / "catalog.sqlite3")
    )
    url = _anchor_sqlite(url, site_dir)
    tls_cert = _get(server, "tls_cert", str, "")
    tls_key = _get(server, "tls_key", str, "")
    return SiteConfig(
        site_dir=site_dir,
        database_url=url,
        store=StoreConfig(data_dirs=data_dirs, copies=copies, kind=kind, s3=s3),
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
        publish=_get(server, "publish", bool, True),
        scrub=_scrub(_table(raw, "scrub")),
        backup=_backup(_table(raw, "backup")),
        monitoring=parse_monitoring(raw, _get, parse_duration, parse_size,
                                    _get(server, "listen", str, "127.0.0.1:8080"),
                                    _get(server, "public_url", str, "") or None),
        redirector=_redirector(raw, site_dir, _get(server, "public_url", str, "") or None,
                               _get(server, "listen", str, "127.0.0.1:8080")),
        console=_console(_table(raw, "console")),
        sources=parse_sources_config(_table(raw, "sources")),
        mirror=parse_mirror(_table(raw, "mirror"), env),
        signing=parse_signing(_table(raw, "signing")),
        lease_seconds=_lease(server),
    )


def _lease(server: Mapping[str, Any]) -> int:
    seconds = parse_duration(str(server.get("lease", "30s")))
    if seconds < 2:
        raise UsageError("[server] lease must be at least 2s")
    return seconds


def _redirector(raw: Mapping[str, Any], site_dir: Path, public_url: str | None,
                listen: str) -> RedirectorConfig:
    from tain.config_sites import parse_redirector  # it builds on this module's helpers

    return parse_redirector(raw, site_dir, public_url or f"http://{listen}")


def _s3(table: Mapping[str, Any]) -> S3Config:
    bucket = _get(table, "bucket", str, "")
    if not bucket:
        raise UsageError("[store.s3] bucket is required when [store] kind = 's3'")
    ttl = _get(table, "presign_ttl_seconds", int, 300)
    if not 1 <= ttl <= 7 * 86400:
        raise UsageError("[store.s3] presign_ttl_seconds must be between 1 and 604800")
    return S3Config(
        bucket=bucket,
        prefix=_get(table, "prefix", str, "").strip("/"),
        endpoint_url=_get(table, "endpoint_url", str, "") or None,
        region=_get(table, "region", str, "") or None,
        access_key_id=_get(table, "access_key_id", str, "") or None,
        secret_access_key=_get(table, "secret_access_key", str, "") or None,
        presign_downloads=_get(table, "presign_downloads", bool, False),
        presign_ttl_seconds=ttl,
    )


def _scrub(table: Mapping[str, Any]) -> ScrubConfig:
    fraction = float(_get(table, "fraction", (int, float), 1.0))
    if not 0 < fraction <= 1:
        raise UsageError("[scrub] fraction must be in (0, 1]")
    rate = _get(table, "rate_limit", str, "")
    return ScrubConfig(
        every_seconds=parse_duration(_get(table, "every", str, "")) or None,
        fraction=fraction,
        rate_limit_bytes=parse_size(rate) if rate else None,
    )


def _backup(table: Mapping[str, Any]) -> BackupConfig:
    keep = _get(table, "keep", int, 7)
    if keep < 1:
        raise UsageError("[backup] keep must be at least 1")
    return BackupConfig(
        every_seconds=parse_duration(_get(table, "every", str, "")) or None,
        dest=_get(table, "dest", str, "") or None,
        keep=keep,
        blobs=_get(table, "blobs", bool, True),
    )


def _console(table: Mapping[str, Any]) -> ConsoleConfig:
    config = ConsoleConfig(
        session_seconds=parse_duration(_get(table, "session_lifetime", str, "12h")),
        idle_seconds=parse_duration(_get(table, "idle_timeout", str, "1h")),
        max_failures=_get(table, "max_failed_logins", int, 5),
        lockout_seconds=parse_duration(_get(table, "lockout", str, "5m")),
    )
    if min(config.session_seconds, config.idle_seconds, config.lockout_seconds) < 1:
        raise UsageError("[console] session_lifetime, idle_timeout and lockout must be positive")
    if config.max_failures < 1:
        raise UsageError("[console] max_failed_logins must be at least 1")
    return config


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(text: str) -> int:
    """"90s", "15m", "6h", "1d", "2w" (or a plain number of seconds) → seconds; "" → 0."""
    text = text.strip().lower()
    if not text:
        return 0
    number, unit = (text[:-1], text[-1]) if text[-1] in _UNITS else (text, "s")
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"bad duration {text!r}", hint="use e.g. 90s, 15m, 6h, 1d") from None
    if value <= 0:
        raise UsageError(f"duration {text!r} must be positive")
    return int(value * _UNITS[unit])


def parse_size(text: str) -> int:
    """"50M", "1G", "512k", "100MB/s" (bytes, binary units) → bytes."""
    cleaned = text.strip().lower().removesuffix("/s").removesuffix("ib").removesuffix("b")
    unit = cleaned[-1] if cleaned and cleaned[-1] in _SIZES else ""
    number = cleaned[: -1] if unit else cleaned
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"bad size {text!r}", hint="use e.g. 50M, 1G, 512k") from None
    if value <= 0:
        raise UsageError(f"size {text!r} must be positive")
    return int(value * _SIZES[unit])


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


def _get(
    table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any
) -> Any:
    value = table.get(key, default)
    bool_for_number = isinstance(value, bool) and kind is not bool
    if not isinstance(value, kind) or bool_for_number:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise UsageError(f"'{key}' in {CONFIG_NAME} must be of type {names}")
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
# kind = "local": several directories on different disks, each blob on `copies` of them.
# kind = "s3": an S3-compatible bucket, set in [store.s3] (bucket, prefix, endpoint_url,
# region, access_key_id, secret_access_key, presign_downloads, presign_ttl_seconds).
kind = "local"
data_dirs = ["blobs"]
copies = 1
gc_grace_seconds = 3600

# Read every stored blob and check its SHA-256 on a schedule (tain scrub does it now).
[scrub]
# every = "24h"
fraction = 1.0
# rate_limit = "100M"

# Scheduled backups (tain backup does one now).
[backup]
# every = "24h"
# dest = "/var/backups/tain"
keep = 7
blobs = true

# Metrics, statistics and alerts are on with these defaults (docs/monitoring.md).
# [metrics]                     # Prometheus at /metrics: without a token from loopback only
# token = "a-long-random-secret"
# anonymous = "loopback"        # or "all", "none"
# [stats]                       # downloads and pushes per day, in the catalog (tain stats)
# flush_every = "5s"
# [alerts]
# check_every = "30s"
# repeat_every = "4h"
# [alerts.agent_silent]
# after = "10m"
# [[alerts.webhook]]            # tain alerts test tries every channel
# url = "https://hooks.slack.com/services/..."
# format = "slack"
# [[alerts.email]]
# host = "smtp.example.org"
# to = ["ops@example.org"]
# Pull sources: jobs that mirror rsync/HTTP upstreams (docs/sources.md).
# [sources]
# max_concurrent = 2
# [[sources.jobs]]
# name = "debian"
# repo = "debian"
# kind = "rsync"
# url = "rsync://ftp.de.debian.org/debian/"
# cron = "0 */6 * * *"

[limits]
max_chunk_bytes = 4194304
max_upload_request_bytes = 67108864
max_commit_changes = 100000
"""
