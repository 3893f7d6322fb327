"""Where backups go: a directory or an S3 prefix, behind one small contract.

A target holds immutable objects under ``/``-separated keys (``blobs/ab/cd/<sha256>``,
``<backup name>/manifest.json``...). ``backup.py`` decides what the keys hold; a target
only stores them. Both targets pass ``tests/service/test_backup_targets.py``.

``location``, ``url(key)``
    The destination as tain prints it (an absolute path or ``s3://bucket/prefix``), and
    where one key lives, for messages and reports.
``lock()``
    One backup or prune at a time; ``Conflict`` while another holds it. A directory is
    locked with ``flock`` on ``DEST/.lock``, which also clears what a crashed run left
    there. S3 has no lock that fits, so an S3 prefix is locked only against processes on
    this machine (a lock file in ``lock_dir``): give each site a prefix of its own.
``staging()``
    A new, empty local directory for files on their way in, removed with whatever is
    left in it when the block ends. A directory target stages inside ``DEST``, so a put
    is a rename; an S3 target in the temp dir (``spool_dir``).
``put_file(local, key, sha256=None)``
    Moves the file ``local`` to ``key`` (``local`` is gone afterwards). Atomic: readers
    see the old object or none, then the whole new one, never a part (a rename; one S3
    PUT or one completed multipart upload). ``sha256`` is kept as object metadata
    (``tain-sha256``) where there is metadata.
``sync()``
    Makes every put so far survive a crash (a directory fsyncs the directories it
    changed; an S3 PUT is durable when it returns).
``objects(prefix)``, ``names()``
    ``(key, size)`` of every object under ``prefix`` ("" or ending in "/") in key
    (byte) order, nothing for an absent prefix; and the first segments of all keys
    (backup names and ``blobs``), sorted. Names starting with "." are the target's own
    (locks, temp files) and never keys.
``exists(key)``, ``open(key)``, ``local_path(key)``
    Whether an object is there; a reader of its bytes (``NotFound`` when it is not);
    the file that holds it when the target keeps local files (so restore reads it in
    place; it may not exist), else None.
``delete(keys)``
    Removes them; a missing key is no error.

Errors: an unreachable endpoint, refused credentials, a missing bucket or a full disk
are a one-line ``StorageError`` with a hint; only ``open`` raises ``NotFound``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tain.errors import Conflict, NotFound, StorageError, TainError, UsageError
from tain.store.durable import fsync_dir, fsync_file
from tain.store.s3 import (
    MULTIPART_CHUNKSIZE,
    MULTIPART_THRESHOLD,
    SHA_META,
    s3_error,
    s3_errors,
)

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client

ENDPOINT_ENV = "TAIN_BACKUP_S3_ENDPOINT_URL"
DELETE_BATCH = 1000  # the most one DeleteObjects request takes
_S3_HINT = (f"check the s3:// URL, --s3-endpoint-url (or {ENDPOINT_ENV}) and the AWS "
            "credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")


class BackupTarget(Protocol):
    location: str

    def url(self, key: str) -> str: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def staging(self) -> contextlib.AbstractContextManager[Path]: ...

    def put_file(self, local: Path, key: str, *, sha256: str | None = None) -> None: ...

    def sync(self) -> None: ...

    def objects(self, prefix: str = "") -> Iterator[tuple[str, int]]: ...

    def names(self) -> list[str]: ...

    def exists(self, key: str) -> bool: ...

    def open(self, key: str) -> IO[bytes]: ...

    def local_path(self, key: str) -> Path | None: ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def close(self) -> None: ...


def blob_key(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


# -- destinations as the user writes them -----------------------------------------------------


def resolve_dest(dest: str | Path, *, base: Path | None = None) -> str:
    """A destination as tain keeps it: ``s3://bucket/prefix`` (normalized), or an
    absolute directory (a relative one is taken from ``base``, else the working dir)."""
    text = str(dest)
    if text.startswith("s3://"):
        bucket, prefix = parse_s3_url(text)
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if "://" in text or text.startswith("s3:/"):  # the latter: an URL passed as a Path
        raise UsageError(f"backup destination {text!r}: tain backs up to a directory or "
                         "to s3://BUCKET/PREFIX")
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else (base or Path.cwd()) / path)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as (bucket, "some/prefix")."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise UsageError(f"backup destination {url!r} names no bucket",
                         hint="write s3://BUCKET or s3://BUCKET/PREFIX")
    if not _BUCKET.fullmatch(bucket):
        raise UsageError(f"backup destination {url!r}: {bucket!r} is not an S3 bucket name")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts) or any(c in url for c in "?#\\"):
        raise UsageError(f"backup destination {url!r}: a prefix is plain '/'-separated names")
    return bucket, "/".join(parts)


def split_dest(dest: str) -> tuple[str, str]:
    """A resolved destination as (its parent, its last name)."""
    if dest.startswith("s3://"):
        parent, _, name = dest.rpartition("/")
        if parent == "s3:/":
            raise UsageError(f"{dest} is a whole bucket, not one backup in a destination")
        return parent, name
    return str(Path(dest).parent), Path(dest).name


def open_target(
    dest: str | Path, env: Mapping[str, str], *, base: Path | None = None,
    endpoint_url: str | None = None, lock_dir: Path | None = None,
) -> BackupTarget:
    """The target ``dest`` names. An S3 endpoint is ``endpoint_url``, else
    ``TAIN_BACKUP_S3_ENDPOINT_URL`` in ``env``, else AWS's own; credentials and region
    come from the AWS variables in ``env`` (or boto3's usual chain: profiles, roles)."""
    where = resolve_dest(dest, base=base)
    if not where.startswith("s3://"):
        if endpoint_url:
            raise UsageError("--s3-endpoint-url is only for s3:// destinations")
        return DirectoryTarget(Path(where))
    bucket, prefix = parse_s3_url(where)
    endpoint = endpoint_url or env.get(ENDPOINT_ENV) or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"S3 endpoint {endpoint!r} is not an http(s):// URL")
    return S3Target(s3_client(endpoint, env), bucket, prefix, lock_dir=lock_dir)


# -- a directory --------------------------------------------------------------------------------


class DirectoryTarget:
    """Keys as files under ``root``; staging, temp files and the lock are dot-names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self._dirty: set[Path] = set()

    def url(self, key: str) -> str:
        return str(self._path(key))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error("create", self.root, exc) from exc
        with _flock(self.root / ".lock", self.location):
            for path in [*self.root.glob(".partial-*"), self.root / "blobs" / "tmp"]:
                shutil.rmtree(path, ignore_errors=True)  # a crash's (blobs/tmp: old layout)
            yield

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        path = self.root / f".partial-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            raise self._error("create", path, exc) from exc
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def put_file(self, local: Path, key: str, *, sha256: str | None = None) -> None:
        final = self._path(key)
        try:
            self._make_dirs(final.parent)
            fsync_file(local)
            try:
                os.replace(local, final)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}")
                shutil.copy2(local, tmp)
                fsync_file(tmp)
                os.replace(tmp, final)
                local.unlink()
        except OSError as exc:
            raise self._error("write", final, exc) from exc
        self._dirty.add(final.parent)

    def sync(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for path in sorted(dirty, key=lambda p: len(p.parts), reverse=True):
            try:
                fsync_dir(path)
            except OSError as exc:
                raise self._error("sync", path, exc) from exc

    def objects(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"a prefix ends in '/': {prefix!r}")
        yield from self._walk(self._path(prefix) if prefix else self.root, prefix)

    def names(self) -> list[str]:
        return sorted(name for name in self._entries(self.root) if not name.startswith("."))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def open(self, key: str) -> IO[bytes]:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"no {path}") from exc
        except OSError as exc:
            raise self._error("read", path, exc) from exc

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, keys: Iterable[str]) -> None:
        parents: set[Path] = set()
        for key in keys:
            path = self._path(key)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise self._error("delete", path, exc) from exc
            parents.add(path.parent)
        for path in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            while path != self.root and path.is_relative_to(self.root):
                try:
                    path.rmdir()  # only when empty
                except OSError:
                    break
                path = path.parent

    def close(self) -> None:
        pass

    def _path(self, key: str) -> Path:
        parts = key.rstrip("/").split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not a backup key: {key!r}")
        return self.root.joinpath(*parts)

    def _make_dirs(self, path: Path) -> None:
        """``path`` and its missing parents; the new entries are synced by ``sync``."""
        missing: list[Path] = []
        while not path.is_dir():
            missing.append(path)
            path = path.parent
        for new in reversed(missing):
            new.mkdir(exist_ok=True)
            self._dirty.add(new.parent)

    def _walk(self, directory: Path, rel: str) -> Iterator[tuple[str, int]]:
        entries = sorted(
            (e for e in self._scan(directory) if not e.name.startswith(".")),
            key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name,
        )  # "a/" sorts against "a-b" as the keys "a/x" and "a-b" do: byte order overall
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), f"{rel}{entry.name}/")
            elif entry.is_file(follow_symlinks=False):
                yield f"{rel}{entry.name}", entry.stat(follow_symlinks=False).st_size

    def _scan(self, directory: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as it:
                return list(it)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise self._error("list", directory, exc) from exc

    def _entries(self, directory: Path) -> list[str]:
        return [e.name for e in self._scan(directory)]

    def _error(self, action: str, path: Path, exc: OSError) -> StorageError:
        return StorageError(f"cannot {action} {path}: {exc.strerror or exc}", path=str(path))


# -- an S3 prefix -------------------------------------------------------------------------------


class S3Target:
    """Keys under ``prefix/`` in ``bucket``; see the module docstring for the lock."""

    def __init__(
        self, client: S3Client, bucket: str, prefix: str, *, lock_dir: Path | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.bucket = bucket
        self.location = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client = client
        self._root = f"{prefix}/" if prefix else ""
        self._lock_dir = lock_dir or Path(tempfile.gettempdir())
        self._spool_dir = spool_dir
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNKSIZE,
            max_concurrency=4,
        )

    def url(self, key: str) -> str:
        return f"{self.location}/{key}"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        digest = hashlib.sha256(self.location.encode()).hexdigest()[:16]
        try:
            self._lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self._lock_dir}: {exc.strerror}") from exc
        with _flock(self._lock_dir / f"backup-s3-{digest}.lock", self.location):
            yield

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        try:
            tmp = tempfile.TemporaryDirectory(prefix="tain-backup-", dir=self._spool_dir)
        except OSError as exc:
            raise StorageError(f"cannot create a temp dir: {exc.strerror or exc}") from exc
        with tmp as path:
            yield Path(path)

    def put_file(self, local: Path, key: str, *, sha256: str | None = None) -> None:
        extra: dict[str, Any] = {"ContentType": "application/octet-stream"}
        if sha256 is not None:
            extra["Metadata"] = {SHA_META: sha256}
        with self._errors("upload an object"):
            self._client.upload_file(str(local), self.bucket, self._root + key,
                                     ExtraArgs=extra, Config=self._transfer)
        local.unlink(missing_ok=True)

    def sync(self) -> None:
        pass

    def objects(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"a prefix ends in '/': {prefix!r}")
        cut = len(self._root)
        with self._errors("list objects"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._root + prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"][cut:], int(obj["Size"])

    def names(self) -> list[str]:
        cut = len(self._root)
        found: set[str] = set()
        with self._errors("list objects"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._root,
                                           Delimiter="/"):
                found.update(p["Prefix"][cut:].rstrip("/") for p in page.get("CommonPrefixes", []))
                found.update(obj["Key"][cut:] for obj in page.get("Contents", []))
        return sorted(name for name in found if name and not name.startswith("."))

    def exists(self, key: str) -> bool:
        try:
            with self._errors("look up an object", missing="absent"):
                self._client.head_object(Bucket=self.bucket, Key=self._root + key)
        except NotFound:
            return False
        return True

    def open(self, key: str) -> IO[bytes]:
        with self._errors("read an object", missing=f"no {self.url(key)}"):
            body = self._client.get_object(Bucket=self.bucket, Key=self._root + key)["Body"]
        return io.BufferedReader(_BodyReader(body, self), buffer_size=1 << 20)

    def local_path(self, key: str) -> Path | None:
        return None

    def delete(self, keys: Iterable[str]) -> None:
        batch: list[str] = []
        for key in keys:
            batch.append(self._root + key)
            if len(batch) == DELETE_BATCH:
                self._delete(batch)
                batch = []
        if batch:
            self._delete(batch)

    def close(self) -> None:
        self._client.close()

    def _delete(self, keys: list[str]) -> None:
        with self._errors("delete objects"):
            answer = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
        failed = answer.get("Errors", [])
        if failed:
            first = failed[0]
            raise StorageError(f"S3 did not delete {len(failed)} object(s) in {self.location}, "
                               f"e.g. {first.get('Key')}: {first.get('Code')}", hint=_S3_HINT)

    def _errors(
        self, action: str, *, missing: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        return s3_errors(lambda exc: self.error(exc, action, missing))

    def error(self, exc: Exception, action: str, missing: str | None = None) -> TainError:
        """The store's translation of a botocore error (s3_error), with a hint that
        names the backup's settings rather than ``[store.s3]``."""
        mapped = s3_error(exc, action, self.bucket, str(self._client.meta.endpoint_url), missing)
        if mapped.hint is not None:
            mapped.hint = _S3_HINT
        return mapped


class _BodyReader(io.RawIOBase):
    """An S3 GET's body as a raw file; errors while reading become tain errors."""

    def __init__(self, body: StreamingBody, target: S3Target) -> None:
        self._body = body
        self._target = target

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (ClientError, BotoCoreError) as exc:
            raise self._target.error(exc, "read an object") from exc
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def s3_client(endpoint_url: str | None, env: Mapping[str, str]) -> S3Client:
    """A client with the settings tain's S3 store uses (path-style for a custom
    endpoint, SigV4, checksums only where S3 requires them); credentials, profile and
    region from the AWS variables in ``env``, else boto3's usual chain."""
    try:
        session = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            profile_name=env.get("AWS_PROFILE") or None,
            region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        )
    except BotoCoreError as exc:  # e.g. a profile that does not exist
        raise StorageError(f"cannot set up S3 credentials: {exc}", hint=_S3_HINT) from exc
    settings = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=16,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", endpoint_url=endpoint_url, config=settings,
                          region_name=session.region_name or "us-east-1")


# -- files --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _flock(path: Path, what: str) -> Iterator[None]:
    try:
        fh = open(path, "a")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise StorageError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"another backup or prune is running in {what}") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
