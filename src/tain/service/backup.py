"""Backups of a site while it serves, retention of scheduled ones, and restore.

A backup goes to a target (``backup_targets.py``): a directory or an S3 prefix
(``s3://bucket/prefix``), both holding these keys::

    blobs/ab/cd/<sha256>     blob bytes, content-addressed, shared by every backup
    20260101T120000Z/        one backup, complete once it has its manifest
      manifest.json          what and when; SHA-256, size and mode of every file below
      catalog.sqlite3        SQLite catalog (online backup API), or
      catalog.jsonl.zst      PostgreSQL catalog (logical export, see snapshot.py)
      blobs.txt              "<sha256> <size>" of every blob the catalog names, sorted
      tain.toml  keys/...    the site's config and signing key

A directory also holds ``.lock`` (one backup or prune at a time) and, while a backup
runs, ``.partial-*/`` (its staging dir).

Consistency: the catalog snapshot is taken first, then exactly the blobs it names are
put (those the target lacks; each verified while staged). A blob the snapshot names
is durable in the store (the catalog records blobs only after that), and gc cannot
delete one that a kept revision uses; one that no revision used and gc deleted
meanwhile is listed in the manifest as dropped, and restore forgets it. Every put is
atomic; the manifest is put last, once every blob and file is durable, so a backup
without a manifest is never taken for complete (the next backup deletes it).

Blobs are incremental: the target's blob keys are listed once (on S3, one request per
1,000 keys) and merged with the snapshot's sorted blob list; a blob already there
with its size is not put again. The key names the content and nothing is put before
its bytes hash to that name, so the size is the check here (a HEAD per blob for the
``tain-sha256`` metadata would cost a request per blob per backup); restore hashes
every byte again.

Restore checks every file against the manifest, loads the catalog into the database
the restored config (and ``TAIN_DATABASE_URL``) names, writes every blob through the
store (so it lands on ``copies`` data dirs and is verified again), publishes, and
writes ``tain.toml`` last: a half-restored site never looks like a site.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

import tain
from tain.config import CONFIG_NAME, SiteConfig, parse
from tain.core.digests import is_digest
from tain.errors import Conflict, IntegrityError, NotFound, StorageError, UsageError
from tain.service.backup_targets import (
    BackupTarget,
    blob_key,
    open_target,
    resolve_dest,
    split_dest,
)
from tain.service.site import Site, open_site, recover
from tain.service.snapshot import load_catalog, snapshot_catalog
from tain.store.durable import fsync_dir, fsync_file
from tain.store.scrub import hash_file

log = logging.getLogger("tain.backup")

MANIFEST = "manifest.json"
BLOB_LIST = "blobs.txt"
FORMAT = 1
BACKUP_NAME = re.compile(r"\d{8}T\d{6}Z(-\d+)?")
_BLOCK = 1 << 20

dest_dir = resolve_dest  # the name the scheduler and the status route know it by


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
    created_at: float
    scheduled: bool


def open_dest(
    site: Site, dest: str | Path, env: Mapping[str, str], *, base: Path | None = None,
    endpoint_url: str | None = None,
) -> BackupTarget:
    """The target to back ``site`` up to; an S3 one is locked in the site's state dir."""
    return open_target(dest, env, base=base, endpoint_url=endpoint_url,
                       lock_dir=site.config.site_dir / "state")


# -- backup -------------------------------------------------------------------------------


def backup(
    site: Site, target: BackupTarget, *, blobs: bool = True, scheduled: bool = False,
    actor: str = "backup", cancel: threading.Event | None = None,
) -> BackupReport:
    """Write one consistent backup of ``site`` to ``target`` while it keeps serving.
    Setting ``cancel`` stops it between blobs, leaving no backup (``Conflict``)."""
    started = time.monotonic()
    with target.lock():
        names = set(target.names())
        _delete_incomplete(target, names)
        created = site.clock()
        name = _new_name(names, created)
        with target.staging() as work:
            report = _write_backup(site, target, work, name, created, blobs, scheduled, cancel)
    report.duration = round(time.monotonic() - started, 3)
    site.catalog.record_event(actor, "backup", target.location, **report.to_json())
    log.info("backup %s: %d blobs, %d copied (%d bytes) in %.1fs", report.path,
             report.blobs, report.blobs_copied, report.bytes_copied, report.duration)
    return report


def scheduled_backup(
    site: Site, dest: str, *, blobs: bool, keep: int, cancel: threading.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> BackupReport:
    """A backup for ``[backup] every``; then only the newest ``keep`` scheduled ones stay.
    ``env`` (default: the process's) may name the S3 endpoint and credentials."""
    env = os.environ if env is None else env
    with closing(open_dest(site, dest, env, base=site.config.site_dir)) as target:
        report = backup(site, target, blobs=blobs, scheduled=True, actor="scheduler",
                        cancel=cancel)
        report.pruned = prune_backups(target, keep)
    if report.pruned:
        site.catalog.record_event("scheduler", "backup.prune", target.location,
                                  removed=report.pruned)
    return report


def _write_backup(
    site: Site, target: BackupTarget, work: Path, name: str, created: float, blobs: bool,
    scheduled: bool, cancel: threading.Event | None,
) -> BackupReport:
    files = work / name
    files.mkdir()
    info = snapshot_catalog(site.config.database_url, files)
    report = BackupReport(name, target.url(name), created, info.kind, scheduled, blobs,
                          repos=dict(info.repos), blobs=len(info.blobs),
                          blob_bytes=sum(size for _, size, _ in info.blobs))
    _copy_site_files(site.config, files)
    dropped = _put_blobs(site, target, work, info.blobs, report, cancel) if blobs else []
    report.blobs_dropped = len(dropped)
    dropped_set = set(dropped)
    with open(files / BLOB_LIST, "w") as out:
        for sha, size, _ in info.blobs:
            if sha not in dropped_set:
                out.write(f"{sha} {size}\n")
    checksums = _checksums(files)
    manifest = {
        "format": FORMAT, "tain_version": tain.__version__, "name": name,
        "created_at": created, "scheduled": scheduled, "site_dir": str(site.config.site_dir),
        "catalog": {"kind": info.kind, "file": info.file,
                    "schema_revision": info.schema_revision},
        "repos": info.repos,
        "blobs": {"included": blobs, "count": report.blobs - len(dropped),
                  "bytes": report.blob_bytes, "list": BLOB_LIST, "dropped": dropped},
        "files": checksums,
    }
    for rel in checksums:
        target.put_file(files / rel, f"{name}/{rel}")
    target.sync()  # every blob and file is durable before the manifest names them
    (files / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    target.put_file(files / MANIFEST, f"{name}/{MANIFEST}")
    target.sync()
    return report


def _copy_site_files(config: SiteConfig, files: Path) -> None:
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
        dst = files / src.relative_to(site_dir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, src.stat().st_mode & 0o777)


def _put_blobs(
    site: Site, target: BackupTarget, work: Path, blobs: list[tuple[str, int, bool]],
    report: BackupReport, cancel: threading.Event | None,
) -> list[str]:
    """Put the blobs the target lacks; returns blobs gc removed meanwhile (unused ones)."""
    stored = _stored_blobs(target)  # sorted like ``blobs``: one merge, no lookups
    have = next(stored, None)
    dropped: list[str] = []
    for sha, size, used in blobs:
        if cancel is not None and cancel.is_set():
            raise Conflict("the backup was interrupted (the site is stopping)")
        while have is not None and have[0] < sha:
            have = next(stored, None)
        if have == (sha, size):
            continue
        try:
            copied = _put_blob(site, target, sha, work)
        except (NotFound, IntegrityError) as exc:
            if used:
                raise IntegrityError(
                    f"blob {sha}, which the catalog uses, cannot be read from the store: "
                    f"{exc}", hint="run 'tain scrub' on the site, then back up again",
                ) from exc
            dropped.append(sha)  # gc removed it (no revision used it)
            continue
        report.blobs_copied += 1
        report.bytes_copied += copied
    return dropped


def _put_blob(site: Site, target: BackupTarget, sha: str, work: Path) -> int:
    """Stage the blob from the store, check its SHA-256, then put it."""
    staged = work / f"blob-{sha}"
    digest, size = hashlib.sha256(), 0
    try:
        with site.store.open(sha) as src, open(staged, "wb") as out:
            while block := src.read(_BLOCK):
                digest.update(block)
                out.write(block)
                size += len(block)
        os.chmod(staged, 0o444)
    except OSError as exc:
        raise StorageError(f"cannot stage blob {sha} in {work}: {exc.strerror or exc}") from exc
    if digest.hexdigest() != sha:
        staged.unlink()
        raise IntegrityError(f"blob {sha} changed while it was copied")
    target.put_file(staged, blob_key(sha), sha256=sha)
    return size


def _stored_blobs(target: BackupTarget) -> Iterator[tuple[str, int]]:
    """(sha256, size) of every blob in the target, sorted."""
    for key, size in target.objects("blobs/"):
        sha = key.rpartition("/")[2]
        if is_digest(sha) and key == blob_key(sha):
            yield sha, size


def _delete_incomplete(target: BackupTarget, names: Iterable[str]) -> None:
    """Backups a crash left without a manifest (the lock says none is being written).
    Only names tain gives backups: other things in a destination are not ours."""
    for name in names:
        if BACKUP_NAME.fullmatch(name) and not target.exists(f"{name}/{MANIFEST}"):
            log.info("deleting the incomplete backup %s", target.url(name))
            target.delete([key for key, _ in target.objects(f"{name}/")])


def _new_name(taken: set[str], created: float) -> str:
    base = datetime.fromtimestamp(created, UTC).strftime("%Y%m%dT%H%M%SZ")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _checksums(files: Path) -> dict[str, dict[str, Any]]:
    sums: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in files.rglob("*") if p.is_file()):
        with open(path, "rb") as f:
            digest, size = hash_file(f)
        mode = path.stat().st_mode & 0o777
        sums[path.relative_to(files).as_posix()] = {"sha256": digest, "size": size,
                                                    "mode": mode}
    return sums


# -- listing and retention -------------------------------------------------------------------


def list_backups(target: BackupTarget) -> list[BackupInfo]:
    """Complete backups in ``target``, oldest first."""
    found: list[BackupInfo] = []
    for name in target.names():
        if name == "blobs":
            continue
        try:
            manifest = read_manifest(target, name)
        except (NotFound, IntegrityError):
            continue
        found.append(BackupInfo(name, float(manifest.get("created_at", 0)),
                                bool(manifest.get("scheduled"))))
    return sorted(found, key=lambda b: (b.created_at, b.name))


def last_backup_time(dest: str, env: Mapping[str, str] | None = None) -> float | None:
    """When the newest scheduled backup in ``dest`` was taken (None if there is none,
    or if ``dest`` cannot be read now)."""
    try:
        with closing(open_target(dest, os.environ if env is None else env)) as target:
            times = [b.created_at for b in list_backups(target) if b.scheduled]
    except UsageError:
        return None
    except StorageError as exc:
        log.warning("cannot list the backups in %s: %s", dest, exc)
        return None
    return max(times) if times else None


def prune_backups(target: BackupTarget, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` scheduled backups (manual ones stay), then
    the blobs no remaining backup names. Returns the names of the backups deleted."""
    if keep < 1:
        raise UsageError("keep must be at least 1")
    with target.lock():
        scheduled = [b for b in list_backups(target) if b.scheduled]
        doomed = scheduled[:-keep]
        for info in doomed:
            target.delete([f"{info.name}/{MANIFEST}"])  # no longer a backup, whatever stays
            target.delete([key for key, _ in target.objects(f"{info.name}/")])
        if doomed:
            _prune_blobs(target, list_backups(target))
    return [b.name for b in doomed]


def _prune_blobs(target: BackupTarget, kept: list[BackupInfo]) -> int:
    """Delete the blobs no kept backup lists (a merge of sorted lists)."""
    with tempfile.TemporaryDirectory(prefix="tain-prune-") as tmp:
        lists = []
        for info in kept:
            try:
                lists.append(_fetch(target, f"{info.name}/{BLOB_LIST}", Path(tmp) / info.name))
            except NotFound as exc:
                raise IntegrityError(
                    f"backup {target.url(info.name)} has no {BLOB_LIST}: no blobs pruned",
                    hint="delete that backup, or put the file back",
                ) from exc
        needed = _unique(heapq.merge(*(_listed(path) for path in lists)))
        wanted = next(needed, None)
        unused: list[str] = []
        for sha, _ in _stored_blobs(target):
            while wanted is not None and wanted < sha:
                wanted = next(needed, None)
            if wanted != sha:
                unused.append(blob_key(sha))
    target.delete(unused)
    return len(unused)


def _listed(path: Path) -> Iterator[str]:
    with open(path) as fh:
        for line in fh:
            yield line.split(" ", 1)[0].strip()


def _unique(items: Iterable[str]) -> Iterator[str]:
    last = None
    for item in items:
        if item != last:
            yield item
            last = item


# -- restore --------------------------------------------------------------------------------


def locate_backup(
    source: str | Path, env: Mapping[str, str], *, endpoint_url: str | None = None
) -> tuple[BackupTarget, str | None]:
    """The target holding ``source`` and a backup name: ``source`` itself when it is
    one backup (it has a manifest), else None (restore its newest)."""
    target = open_target(source, env, endpoint_url=endpoint_url)
    try:
        if not target.exists(MANIFEST):
            return target, None
    except BaseException:
        target.close()
        raise
    target.close()
    parent, name = split_dest(target.location)
    return open_target(parent, env, endpoint_url=endpoint_url), name


def find_backup(target: BackupTarget) -> str:
    """The name of the newest complete backup in ``target``."""
    backups = list_backups(target)
    if not backups:
        raise NotFound(f"no complete backup in {target.location}")
    return backups[-1].name


def restore(
    target: BackupTarget, name: str | None, site_dir: Path, env: Mapping[str, str], *,
    actor: str = "restore",
) -> RestoreReport:
    """Bring a site back from backup ``name`` (default: the newest) in ``target`` into
    the new, empty ``site_dir``."""
    started = time.monotonic()
    name = name or find_backup(target)
    manifest = read_manifest(target, name)
    site_dir = site_dir.resolve()
    if site_dir.exists() and any(site_dir.iterdir()):
        raise UsageError(f"{site_dir} is not empty", hint="restore into a new directory")
    with tempfile.TemporaryDirectory(prefix="tain-restore-") as tmp:
        files = _fetch_verified(target, name, manifest, Path(tmp))
        site_dir.mkdir(parents=True, exist_ok=True)
        config_text = files[CONFIG_NAME].read_text()
        config = parse(tomllib.loads(config_text), site_dir, env)
        for rel, spec in manifest["files"].items():
            if rel != CONFIG_NAME and not rel.startswith(("catalog.", BLOB_LIST)):
                _restore_file(files[rel], site_dir / rel, spec.get("mode"))
        catalog = manifest["catalog"]
        load_catalog(files[catalog["file"]], catalog["kind"], config.database_url)
        report = RestoreReport(target.url(name), str(site_dir), catalog["kind"],
                               repos=dict(manifest.get("repos", {})))
        site = open_site(config)
        try:
            _restore_blobs(site, target, files[BLOB_LIST], manifest, report)
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


def read_manifest(target: BackupTarget, name: str) -> dict[str, Any]:
    """The manifest of backup ``name``: ``NotFound`` if it has none (it is incomplete)."""
    with target.open(f"{name}/{MANIFEST}") as fh:
        text = fh.read()
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise IntegrityError(f"{target.url(name)}/{MANIFEST} cannot be read: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"{target.url(name)} is not a tain backup this version can read")
    return manifest


def _fetch_verified(
    target: BackupTarget, name: str, manifest: dict[str, Any], tmp: Path
) -> dict[str, Path]:
    """Every file of the backup as a local file checked against the manifest."""
    files: dict[str, Path] = {}
    for rel, expected in manifest["files"].items():
        url = target.url(f"{name}/{rel}")
        if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
            raise IntegrityError(f"the manifest of {target.url(name)} names {rel!r}")
        try:
            path = _fetch(target, f"{name}/{rel}", tmp / rel)
            with open(path, "rb") as f:
                digest, size = hash_file(f)
        except (NotFound, FileNotFoundError) as exc:
            raise IntegrityError(f"backup file {url} is missing") from exc
        if digest != expected["sha256"] or size != expected["size"]:
            raise IntegrityError(f"backup file {url} does not match its manifest")
        files[rel] = path
    return files


def _fetch(target: BackupTarget, key: str, into: Path) -> Path:
    """The object as a local file: the target's own, else a copy downloaded ``into``."""
    local = target.local_path(key)
    if local is not None:
        return local
    into.parent.mkdir(parents=True, exist_ok=True)
    with target.open(key) as src, open(into, "wb") as out:
        shutil.copyfileobj(src, out, _BLOCK)
    return into


def _restore_file(src: Path, dst: Path, mode: int | None) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(src, dst)
    os.chmod(dst, mode if mode is not None else src.stat().st_mode & 0o777)
    fsync_file(dst)


def _restore_blobs(
    site: Site, target: BackupTarget, blob_list: Path, manifest: dict[str, Any],
    report: RestoreReport,
) -> None:
    included = bool(manifest["blobs"].get("included"))
    for sha, _size in _blob_list(blob_list):
        if site.store.has_blobs([sha]):
            continue
        src = _open_blob(target, sha) if included else None
        if src is None:
            report.blobs_missing += 1
            continue
        with src, site.store.new_blob() as writer:
            while block := src.read(_BLOCK):
                writer.write(block)
            writer.commit(sha)  # DigestMismatch if the backup's copy went bad
            report.bytes_restored += writer.size
        report.blobs_restored += 1
    if report.blobs_missing:
        log.warning("restore: %d blob(s) are not in the backup; fetch them with "
                    "'tain scrub SITE_DIR --repair-from URL'", report.blobs_missing)


def _open_blob(target: BackupTarget, sha: str) -> IO[bytes] | None:
    try:
        return target.open(blob_key(sha))
    except NotFound:
        return None


def _blob_list(path: Path) -> Iterator[tuple[str, int]]:
    with open(path) as fh:
        for line in fh:
            sha, _, size = line.strip().partition(" ")
            if sha:
                yield sha, int(size or 0)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
