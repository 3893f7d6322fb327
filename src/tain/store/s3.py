"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW...).

Layout under the configured prefix (``<prefix>/`` when one is set)::

    blobs/ab/<sha256>      whole blobs, with user metadata ``tain-sha256: <sha256>``
    chunks/ab/<blake3>     staged upload chunks; ``prune_chunks`` goes by LastModified

Writing: a new blob is streamed into a temp file in the spool dir (default: the system
temp dir) while it is hashed. ``commit`` checks the digest, asks whether the bucket
already holds the blob (HEAD: same size and the same ``tain-sha256`` metadata means a
no-op) and otherwise uploads the file with boto3's managed transfer: one PUT, or above
``multipart_threshold`` a multipart upload whose parts are read from the file, so a blob
is never held in memory. S3 makes an object visible only once its PUT or its multipart
upload completes, so nobody ever sees part of a blob. An upload cut short by a crash
leaves invisible parts of an unfinished multipart upload, which a bucket lifecycle rule
(AbortIncompleteMultipartUpload) removes; the spool file it leaves (``tain-s3-put-*``)
is safe to delete.

Reading: ``open`` downloads the object into an anonymous temp file in the spool dir,
hashing it on the way, and returns that file at offset 0 only if the bytes hash to the
name; the file disappears when it is closed (or when the process dies). Every ``open``
costs one GET: the bucket is not ours to watch, so no check is remembered.

Every botocore error is translated here, once: a missing key is ``NotFound``; refused
credentials, a missing bucket or an unreachable endpoint are a one-line ``StorageError``
with a hint.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO
from urllib.parse import quote

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from tain.config import S3Config
from tain.core.digests import blake3_hex, is_digest
from tain.errors import DigestMismatch, IntegrityError, NotFound, StorageError, TainError
from tain.store.base import AbortOnExit, ImmediateGroup

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger("tain.store")

IO_BLOCK = 1024 * 1024
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNKSIZE = 16 * 1024 * 1024
HEAD_THREADS = 16
DELETE_BATCH = 1000  # the most one DeleteObjects request takes
SHA_META = "tain-sha256"

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_ACCESS_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "403",
})
_CREDENTIALS_HINT = (
    "check [store.s3] access_key_id and secret_access_key (or the AWS_* environment) "
    "and the bucket's policy"
)


class S3Store:
    """The ``BlobStore`` contract over one bucket (and key prefix) of an S3 service.

    ``client`` replaces the boto3 client built from ``config`` (the store then closes
    it in ``close`` all the same). ``spool_dir`` holds the temp files of writes and
    reads. Blobs larger than ``multipart_threshold`` bytes are uploaded in parts of
    ``multipart_chunksize`` bytes (S3 wants at least 5 MiB).
    """

    def __init__(
        self,
        config: S3Config,
        *,
        client: S3Client | None = None,
        spool_dir: Path | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_CHUNKSIZE,
    ) -> None:
        self.config = config
        self.bucket = config.bucket
        self.spool_dir = Path(spool_dir or tempfile.gettempdir())
        self._root = f"{config.prefix.strip('/')}/" if config.prefix.strip("/") else ""
        self._client = client or _new_client(config)
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunksize,
            max_concurrency=4,
        )

    def close(self) -> None:
        """Close the HTTP connections of the client."""
        self._client.close()

    @property
    def endpoint(self) -> str:
        return str(self._client.meta.endpoint_url)

    # -- blobs -------------------------------------------------------------------------

    def new_blob(self) -> S3BlobWriter:
        try:
            fd, name = tempfile.mkstemp(prefix="tain-s3-put-", dir=self.spool_dir)
        except OSError as exc:
            raise self._spool_error("create a temp file", exc) from exc
        return S3BlobWriter(self, os.fdopen(fd, "wb", buffering=IO_BLOCK), Path(name))

    def blob_group(self) -> ImmediateGroup:
        return ImmediateGroup(self)

    def open(self, sha256: str) -> BinaryIO:
        if not is_digest(sha256):
            raise NotFound(f"no blob {sha256!r}")
        try:
            spool = tempfile.TemporaryFile(  # noqa: SIM115 - handed to the caller
                prefix="tain-s3-get-", dir=self.spool_dir
            )
        except OSError as exc:
            raise self._spool_error("create a temp file", exc) from exc
        try:
            actual = self._download(self._blob_key(sha256), spool, f"no blob {sha256}")
            if actual != sha256:
                log.error("corrupt blob %s in s3://%s: its bytes hash to %s",
                          sha256, self.bucket, actual)
                raise IntegrityError(
                    f"blob {sha256} in S3 is corrupt: its bytes hash to {actual}",
                    sha256=sha256,
                )
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    def local_path(self, sha256: str) -> Path | None:
        return None

    def size(self, sha256: str) -> int:
        if not is_digest(sha256):
            raise NotFound(f"no blob {sha256!r}")
        head = self._head(self._blob_key(sha256))
        if head is None:
            raise NotFound(f"no blob {sha256}")
        return head[0]

    def has_blobs(self, shas: Iterable[str]) -> set[str]:
        """Blobs present in the bucket (not verified: that is ``open``'s job)."""
        return self._present({sha: self._blob_key(sha) for sha in set(shas) if is_digest(sha)})

    def delete(self, sha256: str) -> None:
        if not is_digest(sha256):
            return
        key = self._blob_key(sha256)
        with self._errors("delete a blob"):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def iter_blobs(self) -> Iterator[str]:
        """Every blob name once, sorted (S3 lists keys in byte order), page by page."""
        top = f"{self._root}blobs/"
        for key, _ in self._list(top):
            name = key.rpartition("/")[2]
            if is_digest(name) and key == self._blob_key(name):
                yield name

    def presigned_url(
        self, sha256: str, ttl: int, filename: str | None = None, *,
        content_type: str | None = None,
    ) -> str:
        """A URL that lets anyone GET the blob straight from S3 for ``ttl`` seconds.
        With ``filename``, the response names it (Content-Disposition: attachment).
        The URL is signed locally: it says nothing about whether the blob exists."""
        if not is_digest(sha256):
            raise NotFound(f"no blob {sha256!r}")
        params = {"Bucket": self.bucket, "Key": self._blob_key(sha256)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        if content_type:
            params["ResponseContentType"] = content_type
        with self._errors("sign a download URL"):
            return self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=ttl
            )

    # -- chunks ------------------------------------------------------------------------

    def put_chunk(self, digest: str, data: bytes) -> None:
        actual = blake3_hex(data)
        if actual != digest:
            raise DigestMismatch(
                f"chunk bytes hash to {actual}, not {digest}", expected=digest, actual=actual
            )
        with self._errors("stage a chunk"):
            self._client.put_object(Bucket=self.bucket, Key=self._chunk_key(digest), Body=data)

    def get_chunk(self, digest: str) -> bytes:
        if not is_digest(digest):
            raise NotFound(f"no staged chunk {digest!r}")
        key = self._chunk_key(digest)
        with self._errors("read a chunk", missing=f"no staged chunk {digest}"):
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                data = body.read()
            finally:
                body.close()
        if blake3_hex(data) != digest:
            # Dropped so that has_chunks stops reporting it and the client sends it again.
            log.error("corrupt staged chunk s3://%s/%s: removed", self.bucket, key)
            with self._errors("delete a corrupt chunk"):
                self._client.delete_object(Bucket=self.bucket, Key=key)
            raise IntegrityError(f"staged chunk {digest} is corrupt", hint="upload it again")
        return data

    def has_chunks(self, digests: Iterable[str]) -> set[str]:
        return self._present({d: self._chunk_key(d) for d in set(digests) if is_digest(d)})

    def prune_chunks(self, older_than: float) -> int:
        old = [
            key for key, modified in self._list(f"{self._root}chunks/")
            if modified < older_than and is_digest(key.rpartition("/")[2])
        ]
        removed = 0
        for start in range(0, len(old), DELETE_BATCH):
            batch = old[start : start + DELETE_BATCH]
            with self._errors("prune staged chunks"):
                answer = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            failed = answer.get("Errors", [])
            for error in failed[:3]:
                log.warning("cannot prune %s: %s", error.get("Key"), error.get("Code"))
            removed += len(batch) - len(failed)
        return removed

    # -- internals ---------------------------------------------------------------------

    def _blob_key(self, sha256: str) -> str:
        return f"{self._root}blobs/{sha256[:2]}/{sha256}"

    def _chunk_key(self, digest: str) -> str:
        return f"{self._root}chunks/{digest[:2]}/{digest}"

    def _upload(self, sha256: str, path: Path, size: int) -> None:
        """Put the complete spool file ``path`` under the blob's key, unless the bucket
        already holds the blob as tain wrote it (anything else there is replaced)."""
        key = self._blob_key(sha256)
        if self._head(key) == (size, sha256):
            return
        with self._errors("store a blob"):
            self._client.upload_file(
                str(path), self.bucket, key, Config=self._transfer,
                ExtraArgs={"Metadata": {SHA_META: sha256},
                           "ContentType": "application/octet-stream"},
            )

    def _download(self, key: str, out: IO[bytes], missing: str) -> str:
        """Stream one object into ``out``; returns the SHA-256 of what was written."""
        digest = hashlib.sha256()
        with self._errors("read a blob", missing=missing):
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                while block := body.read(IO_BLOCK):
                    digest.update(block)
                    try:
                        out.write(block)
                    except OSError as exc:
                        raise self._spool_error("write a downloaded blob", exc) from exc
            finally:
                body.close()
        return digest.hexdigest()

    def _head(self, key: str) -> tuple[int, str | None] | None:
        """(size, tain-sha256 metadata) of an object, None when there is none."""
        try:
            with self._errors("look up an object", missing="absent"):
                head = self._client.head_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return None
        return head["ContentLength"], head.get("Metadata", {}).get(SHA_META)

    def _present(self, keys: dict[str, str]) -> set[str]:
        """The names whose keys exist: HEAD requests, several at once."""
        if not keys:
            return set()

        def exists(item: tuple[str, str]) -> tuple[str, bool]:
            return item[0], self._head(item[1]) is not None

        if len(keys) == 1:
            found = [exists(next(iter(keys.items())))]
        else:
            with ThreadPoolExecutor(max_workers=min(HEAD_THREADS, len(keys))) as pool:
                found = list(pool.map(exists, keys.items()))
        return {name for name, ok in found if ok}

    def _list(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(key, LastModified as UNIX time) of every object under ``prefix``, in order."""
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("list objects"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"], obj["LastModified"].timestamp()

    def _errors(
        self, action: str, *, missing: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Translate botocore's errors raised inside the block (see ``s3_error``)."""
        return s3_errors(lambda exc: s3_error(exc, action, self.bucket, self.endpoint, missing))

    def _spool_error(self, action: str, exc: OSError) -> StorageError:
        return StorageError(
            f"cannot {action} in the S3 spool dir {self.spool_dir}: {exc.strerror or exc}",
            dir=str(self.spool_dir),
        )


class S3BlobWriter(AbortOnExit):
    """Streams a blob into a spool file, hashing on the way; ``commit`` uploads it."""

    def __init__(self, store: S3Store, file: IO[bytes], path: Path) -> None:
        self._store = store
        self._file: IO[bytes] | None = file
        self._path: Path | None = path
        self._hash = hashlib.sha256()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        file, _ = self._live()
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._size += view.nbytes
        try:
            file.write(view)
        except OSError as exc:
            self.abort()
            raise self._store._spool_error("write a blob", exc) from exc

    def commit(self, expected_sha256: str | None = None) -> str:
        file, path = self._live()
        try:
            file.close()
            sha = self._hash.hexdigest()
            if expected_sha256 is not None and expected_sha256 != sha:
                raise DigestMismatch(
                    f"blob bytes hash to {sha}, not {expected_sha256}",
                    expected=expected_sha256, actual=sha,
                )
            self._store._upload(sha, path, self._size)
        except OSError as exc:
            raise self._store._spool_error("write a blob", exc) from exc
        finally:
            self.abort()
        return sha

    def abort(self) -> None:
        """Discard the bytes; safe to call more than once and after ``commit``."""
        file, self._file = self._file, None
        path, self._path = self._path, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove spool file %s: %s", path, exc.strerror or exc)

    def _live(self) -> tuple[IO[bytes], Path]:
        if self._file is None or self._path is None:
            raise ValueError("blob writer is closed")
        return self._file, self._path


@contextlib.contextmanager
def s3_errors(translate: Callable[[Exception], TainError]) -> Iterator[None]:
    """Raise ``translate(error)`` for a botocore error inside the block; a failed managed
    upload is translated by the botocore error that caused it."""
    try:
        yield
    except S3UploadFailedError as exc:
        cause = exc.__cause__ or exc.__context__
        raise translate(cause if isinstance(cause, ClientError | BotoCoreError) else exc) from exc
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc) from exc


def s3_error(
    exc: Exception, action: str, bucket: str, endpoint: str, missing: str | None = None
) -> TainError:
    """The tain error for a botocore error met while trying to ``action``; ``missing``
    is the NotFound message for a missing key (None: a missing key is a StorageError)."""
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return StorageError(
            f"cannot reach S3 endpoint {endpoint} (trying to {action})",
            hint="check [store.s3] endpoint_url and that the service is up",
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageError(f"no S3 credentials to {action}", hint=_CREDENTIALS_HINT)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "unknown"))
        if code == "NoSuchBucket":
            return StorageError(
                f"S3 bucket {bucket!r} does not exist at {endpoint}",
                hint="create it, or fix [store.s3] bucket",
            )
        if code in _MISSING_CODES and missing is not None:
            return NotFound(missing)
        if code in _ACCESS_CODES:
            return StorageError(
                f"S3 refused access to bucket {bucket!r} ({code}) trying to {action}",
                hint=_CREDENTIALS_HINT,
            )
        detail = _one_line(str(error.get("Message", "")))
        return StorageError(
            f"S3 error {code} trying to {action} in bucket {bucket!r}"
            + (f": {detail}" if detail else "")
        )
    return StorageError(f"S3 request failed trying to {action}: {_one_line(str(exc))}")


def content_disposition(filename: str) -> str:
    """``attachment`` with the file's name: plain ASCII, plus RFC 5987 UTF-8 if needed."""
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    value = f'attachment; filename="{plain}"'
    if plain != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _new_client(config: S3Config) -> S3Client:
    """A client for ``config``; credentials left empty come from the AWS environment.
    Path-style addressing for a custom endpoint (MinIO, Ceph), SigV4 everywhere, and
    checksums only where S3 requires them (many S3-compatible services reject the
    trailing checksums newer botocore sends by default)."""
    session = boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        region_name=config.region or "us-east-1",
    )
    settings = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if config.endpoint_url else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=64,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", endpoint_url=config.endpoint_url, config=settings)

