"""Backups of a site while it serves, retention of scheduled ones, and restore.

Layout of a backup destination (a directory)::

    DEST/
      blobs/ab/cd/<sha256>     blob bytes, content-addressed, shared by every backup
      blobs/tmp/               blobs being copied
      20260101T120000Z/        one complete backup (a name with a manifest)
        manifest.json          what and when; SHA-256 and size of every file below
        catalog.sqlite3        SQLite catalog (online backup API), or
        catalog.jsonl.zst      PostgreSQL catalog (logical export, see snapshot.py)
        blobs.txt              "<sha256> <size>" of every blob the catalog names, sorted
        tain.toml  keys/...    the site's config and signing key
      .partial-<name>/         a backup being written (never mistaken for a complete one)
      .lock                    one backup, prune or restore at a time

Consistency: the catalog snapshot is taken first, then exactly the blobs it names are
copied (those not in DEST/blobs already; each verified while copied). A blob the
snapshot names is durable in the store (the catalog records blobs only after that),
and gc cannot delete one that a kept revision uses; one that no revision used and gc
deleted meanwhile is listed in the manifest as dropped, and restore forgets it. The
manifest is written last and the directory renamed into place, so a backup is either
complete or invisible.

Restore checks every file against the manifest, loads the catalog into the database
the restored config (and ``TAIN_DATABASE_URL``) names, writes every blob through the
store (so it lands on ``copies`` data dirs and is verified again), publishes, and
writes ``tain.toml`` last: a half-restored site never looks like a site.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import heapq
import json
import logging
import os
import shutil
import threading
import time
import tomllib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tain
from tain.config import CONFIG_NAME, SiteConfig, parse
from tain.errors import Conflict, IntegrityError, NotFound, StorageError, UsageError
from tain.service.site import Site, open_site, recover
from tain.service.snapshot import load_catalog, snapshot_catalog
from tain.store.scrub import hash_file

log = logging.getLogger("tain.backup")

MANIFEST = "manifest.json"
BLOB_LIST = "blobs.txt"
FORMAT = 1
_BLOCK = 1 << 20


@dataclass
class BackupReport:
    name: str
    path: str
    created_at: float
    catalog: str
    scheduled: bool
    blobs_included: bool
    repos: dict[str, int] = field(default_factory=dict)
    blobs: int = 0
    blob_bytes: int = 0
    blobs_copied: int = 0
    bytes_copied: int = 0
    blobs_dropped: int = 0
    duration: float = 0.0
    pruned: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RestoreReport:
    source: str
    site_dir: str
    catalog: str
    repos: dict[str, int] = field(default_factory=dict)
    blobs_restored: int = 0
    bytes_restored: int = 0
    blobs_missing: int = 0
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BackupInfo:
    name: str
    path: Path
    created_at: float
    scheduled: bool


def dest_dir(dest: str | Path, *, base: Path | None = None) -> Path:
    """A backup destination as a directory; ``base`` anchors a relative one."""
    text = str(dest)
    if "://" in text:
        raise UsageError(
            f"backup destination {text!r}: only directories are supported",
            hint="back up to a directory (and copy it off the machine, e.g. with "
                 "'aws s3 sync' or rsync)",
        )
    path = Path(text).expanduser()
    return path if path.is_absolute() or base is None else base / path


# -- backup -------------------------------------------------------------------------------


def backup(
    site: Site, dest: str | Path, *, blobs: bool = True, scheduled: bool = False,
    actor: str = "backup", cancel: threading.Event | None = None,
) -> BackupReport:
    """Write one consistent backup of ``site`` into ``dest`` while it keeps serving.
    Setting ``cancel`` stops it between blobs, leaving no backup (``Conflict``)."""
    root = dest_dir(dest)
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        _clear_partials(root)
        created = site.clock()
        name = _new_name(root, created)
        work = root / f".partial-{name}"
        work.mkdir()
        try:
            report = _write_backup(site, root, work, name, created, blobs, scheduled, cancel)
            _fsync_dir(work)
            work.rename(root / name)
            _fsync_dir(root)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    report.duration = round(time.monotonic() - started, 3)
    site.catalog.record_event(actor, "backup", str(root), **report.to_json())
    log.info("backup %s: %d blobs, %d copied (%d bytes) in %.1fs", report.path,
             report.blobs, report.blobs_copied, report.bytes_copied, report.duration)
    return report


def scheduled_backup(
    site: Site, dest: str, *, blobs: bool, keep: int, cancel: threading.Event | None = None
) -> BackupReport:
    """A backup for ``[backup] every``; then only the newest ``keep`` scheduled ones stay."""
    root = dest_dir(dest, base=site.config.site_dir)
    report = backup(site, root, blobs=blobs, scheduled=True, actor="scheduler", cancel=cancel)
    report.pruned = prune_backups(root, keep)
    if report.pruned:
        site.catalog.record_event("scheduler", "backup.prune", str(root), removed=report.pruned)
    return report


def _write_backup(
    site: Site, root: Path, work: Path, name: str, created: float, blobs: bool,
    scheduled: bool, cancel: threading.Event | None,
) -> BackupReport:
    info = snapshot_catalog(site.config.database_url, work)
    report = BackupReport(name, str(root / name), created, info.kind, scheduled, blobs,
                          repos=dict(info.repos), blobs=len(info.blobs),
                          blob_bytes=sum(size for _, size, _ in info.blobs))
    _copy_site_files(site.config, work)
    dropped = _copy_blobs(site, root, info.blobs, report, cancel) if blobs else []
    report.blobs_dropped = len(dropped)
    dropped_set = set(dropped)
    with open(work / BLOB_LIST, "w") as out:
        for sha, size, _ in info.blobs:
            if sha not in dropped_set:
                out.write(f"{sha} {size}\n")
    manifest = {
        "format": FORMAT, "tain_version": tain.__version__, "name": name,
        "created_at": created, "scheduled": scheduled, "site_dir": str(site.config.site_dir),
        "catalog": {"kind": info.kind, "file": info.file,
                    "schema_revision": info.schema_revision},
        "repos": info.repos,
        "blobs": {"included": blobs, "count": report.blobs - len(dropped),
                  "bytes": report.blob_bytes, "list": BLOB_LIST, "dropped": dropped},
        "files": _checksums(work),
    }
    _write_durably(work / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return report


def _copy_site_files(config: SiteConfig, work: Path) -> None:
    """tain.toml, keys/ and any other file the config names inside the site dir."""
    site_dir = config.site_dir
    wanted = [site_dir / CONFIG_NAME]
    keys = site_dir / "keys"
    if keys.is_dir():
        wanted += sorted(p for p in keys.rglob("*") if p.is_file())
    for path in (config.key_file, config.tls_cert, config.tls_key):
        if path is not None and path.is_relative_to(site_dir) and path not in wanted:
            wanted.append(path)
    for src in wanted:
        dst = work / src.relative_to(site_dir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, src.stat().st_mode & 0o777)
        _fsync_file(dst)


def _copy_blobs(
    site: Site, root: Path, blobs: list[tuple[str, int, bool]], report: BackupReport,
    cancel: threading.Event | None,
) -> list[str]:
    """Copy the blobs DEST lacks; returns blobs gc removed meanwhile (unused ones)."""
    store_dir = root / "blobs"
    tmp_dir = store_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    dirty: set[Path] = set()
    dropped: list[str] = []
    for sha, size, used in blobs:
        if cancel is not None and cancel.is_set():
            raise Conflict("the backup was interrupted (the site is stopping)")
        final = _blob_path(store_dir, sha)
        with contextlib.suppress(FileNotFoundError):
            if final.stat().st_size == size:
                continue
        try:
            copied = _copy_blob(site, sha, final, tmp_dir)
        except (NotFound, IntegrityError) as exc:
            if used:
                raise IntegrityError(
                    f"blob {sha}, which the catalog uses, cannot be read from the store: "
                    f"{exc}", hint="run 'tain scrub' on the site, then back up again",
                ) from exc
            dropped.append(sha)  # gc removed it (no revision used it)
            continue
        dirty.add(final.parent)
        report.blobs_copied += 1
        report.bytes_copied += copied
    for directory in sorted(dirty):  # the renames are durable before the manifest is
        _fsync_dir(directory)
    return dropped


def _copy_blob(site: Site, sha: str, final: Path, tmp_dir: Path) -> int:
    tmp = tmp_dir / f"{sha}.{uuid.uuid4().hex}"
    try:
        with site.store.open(sha) as src, open(tmp, "wb") as out:
            h = hashlib.sha256()
            size = 0
            while block := src.read(_BLOCK):
                h.update(block)
                out.write(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != sha:
            raise IntegrityError(f"blob {sha} changed while it was copied")
        os.chmod(tmp, 0o444)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
    except OSError as exc:
        raise StorageError(f"cannot write blob {sha} to {final.parent}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return size


# -- listing and retention -------------------------------------------------------------------


def list_backups(root: Path) -> list[BackupInfo]:
    """Complete backups in ``root``, oldest first."""
    found: list[BackupInfo] = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        found.append(BackupInfo(path.name, path, float(manifest.get("created_at", 0)),
                                bool(manifest.get("scheduled"))))
    return sorted(found, key=lambda b: (b.created_at, b.name))


def last_backup_time(dest: str) -> float | None:
    """When the newest scheduled backup in ``dest`` was taken (None if there is none)."""
    try:
        root = dest_dir(dest)
    except UsageError:
        return None
    times = [b.created_at for b in list_backups(root) if b.scheduled]
    return max(times) if times else None


def prune_backups(root: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` scheduled backups (manual ones stay), then
    the blobs no remaining backup names. Returns the names of the backups deleted."""
    if keep < 1:
        raise UsageError("keep must be at least 1")
    with _locked(root):
        scheduled = [b for b in list_backups(root) if b.scheduled]
        doomed = scheduled[:-keep]
        for info in doomed:
            (info.path / MANIFEST).unlink()  # no longer a backup, even if rmtree stops
            shutil.rmtree(info.path)
        if doomed:
            _prune_blobs(root, list_backups(root))
    return [b.name for b in doomed]


def _prune_blobs(root: Path, kept: list[BackupInfo]) -> int:
    """Delete blobs in ``root/blobs`` that no kept backup lists (a sorted merge)."""
    needed = _unique(heapq.merge(*(_listed(b.path / BLOB_LIST) for b in kept)))
    wanted = next(needed, None)
    removed = 0
    for sha, path in _stored(root / "blobs"):
        while wanted is not None and wanted < sha:
            wanted = next(needed, None)
        if wanted != sha:
            path.unlink()
            removed += 1
    return removed


def _listed(path: Path) -> Iterator[str]:
    with contextlib.suppress(FileNotFoundError), open(path) as fh:
        for line in fh:
            yield line.split(" ", 1)[0].strip()


def _unique(items: Iterable[str]) -> Iterator[str]:
    last = None
    for item in items:
        if item != last:
            yield item
            last = item


def _stored(store_dir: Path) -> Iterator[tuple[str, Path]]:
    for ab in sorted(_names(store_dir)):
        if len(ab) != 2:
            continue
        for cd in sorted(_names(store_dir / ab)):
            for sha in sorted(_names(store_dir / ab / cd)):
                yield sha, store_dir / ab / cd / sha


def _names(path: Path) -> list[str]:
    try:
        return [p.name for p in path.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


# -- restore --------------------------------------------------------------------------------


def restore(
    source: Path, site_dir: Path, env: Mapping[str, str], *, actor: str = "restore"
) -> RestoreReport:
    """Bring a site back from a backup into the new, empty ``site_dir``."""
    started = time.monotonic()
    backup_dir = find_backup(source)
    manifest = _read_manifest(backup_dir)
    _verify_files(backup_dir, manifest)
    site_dir = site_dir.resolve()
    if site_dir.exists() and any(site_dir.iterdir()):
        raise UsageError(f"{site_dir} is not empty", hint="restore into a new directory")
    site_dir.mkdir(parents=True, exist_ok=True)
    config_text = (backup_dir / CONFIG_NAME).read_text()
    config = parse(tomllib.loads(config_text), site_dir, env)
    for rel in manifest["files"]:
        if rel != CONFIG_NAME and not rel.startswith(("catalog.", BLOB_LIST)):
            _restore_file(backup_dir / rel, site_dir / rel)
    catalog = manifest["catalog"]
    load_catalog(backup_dir / catalog["file"], catalog["kind"], config.database_url)
    report = RestoreReport(str(backup_dir), str(site_dir), catalog["kind"],
                           repos=dict(manifest.get("repos", {})))
    site = open_site(config)
    try:
        _restore_blobs(site, backup_dir, manifest, report)
        dropped = manifest["blobs"].get("dropped") or []
        if dropped:
            site.catalog.forget_blobs(dropped)
        recover(site)
        report.duration = round(time.monotonic() - started, 3)
        site.catalog.record_event(actor, "restore", str(site_dir), **report.to_json())
    finally:
        site.close()
    _write_durably(site_dir / CONFIG_NAME, config_text.encode())  # last: now it is a site
    return report


def find_backup(source: Path) -> Path:
    """``source`` itself if it is a backup, else the newest complete backup in it."""
    if (source / MANIFEST).is_file():
        return source
    backups = list_backups(source)
    if not backups:
        raise NotFound(f"no complete backup in {source}")
    return backups[-1].path


def _read_manifest(backup_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((backup_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{backup_dir / MANIFEST} cannot be read: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"{backup_dir} is not a tain backup this version can read")
    return manifest


def _verify_files(backup_dir: Path, manifest: dict[str, Any]) -> None:
    for rel, expected in manifest["files"].items():
        path = backup_dir / rel
        try:
            with open(path, "rb") as f:
                digest, size = hash_file(f)
        except FileNotFoundError as exc:
            raise IntegrityError(f"backup file {path} is missing") from exc
        if digest != expected["sha256"] or size != expected["size"]:
            raise IntegrityError(f"backup file {path} does not match its manifest")


def _restore_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(src, dst)
    os.chmod(dst, src.stat().st_mode & 0o777)
    _fsync_file(dst)


def _restore_blobs(
    site: Site, backup_dir: Path, manifest: dict[str, Any], report: RestoreReport
) -> None:
    store_dir = backup_dir.parent / "blobs"
    included = bool(manifest["blobs"].get("included"))
    for sha, _size in _blob_list(backup_dir / BLOB_LIST):
        if site.store.has_blobs([sha]):
            continue
        src = _blob_path(store_dir, sha)
        if not included or not src.is_file():
            report.blobs_missing += 1
            continue
        with open(src, "rb") as f, site.store.new_blob() as writer:
            while block := f.read(_BLOCK):
                writer.write(block)
            writer.commit(sha)  # DigestMismatch if the backup's copy went bad
        report.blobs_restored += 1
        report.bytes_restored += src.stat().st_size
    if report.blobs_missing:
        log.warning("restore: %d blob(s) are not in the backup; fetch them with "
                    "'tain scrub SITE_DIR --repair-from URL'", report.blobs_missing)


def _blob_list(path: Path) -> Iterator[tuple[str, int]]:
    with open(path) as fh:
        for line in fh:
            sha, _, size = line.strip().partition(" ")
            if sha:
                yield sha, int(size or 0)


# -- files ------------------------------------------------------------------------------------


def _blob_path(store_dir: Path, sha: str) -> Path:
    return store_dir / sha[:2] / sha[2:4] / sha


def _new_name(root: Path, created: float) -> str:
    base = datetime.fromtimestamp(created, UTC).strftime("%Y%m%dT%H%M%SZ")
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _checksums(work: Path) -> dict[str, dict[str, Any]]:
    sums: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in work.rglob("*") if p.is_file()):
        with open(path, "rb") as f:
            digest, size = hash_file(f)
        sums[path.relative_to(work).as_posix()] = {"sha256": digest, "size": size}
    return sums


def _clear_partials(root: Path) -> None:
    """Backups left half-written by a crash (the lock says none is running)."""
    for path in root.glob(".partial-*"):
        shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(root / "blobs" / "tmp", ignore_errors=True)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"another backup or prune is running in {root}") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
