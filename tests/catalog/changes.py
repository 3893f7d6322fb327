"""Change lists for catalog tests: a file put (its blob recorded) and a directory put."""

from __future__ import annotations

import hashlib

from tain.catalog.sql import SqlCatalog
from tain.core.chunking import chunk_bytes
from tain.core.manifest import Change, Entry, Kind


def file_put(catalog: SqlCatalog, path: str, data: bytes, mode: int = 0o644) -> Change:
    sha = hashlib.sha256(data).hexdigest()
    catalog.add_blob(sha, len(data), chunk_bytes(data))
    return Change("put", path, Entry(path, Kind.FILE, mode, 10**18, sha, len(data)))


def dir_put(path: str, mtime: int) -> Change:
    return Change("put", path, Entry(path, Kind.DIR, 0o755, mtime))
