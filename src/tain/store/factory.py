"""Choosing the blob store a site's config names."""

from __future__ import annotations

from tain.config import StoreConfig
from tain.errors import UsageError
from tain.store.base import BlobStore
from tain.store.local import LocalStore
from tain.store.s3 import S3Store


def open_store(config: StoreConfig) -> BlobStore:
    """``LocalStore`` over ``data_dirs`` (kind "local") or ``S3Store`` (kind "s3")."""
    if config.kind == "local":
        return LocalStore(config.data_dirs, copies=config.copies)
    if config.kind == "s3":
        if config.s3 is None:
            raise UsageError("[store] kind = 's3' needs a [store.s3] table with a bucket")
        return S3Store(config.s3)
    raise UsageError(f"[store] kind must be 'local' or 's3', not {config.kind!r}")
