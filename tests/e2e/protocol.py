"""A minimal, independent implementation of the push protocol's client side, written
from docs/api.md, so the server is tested against the wire format itself."""

from __future__ import annotations

import hashlib
import struct
import uuid
from typing import Any

import httpx
import zstandard

from tain.core.chunking import chunk_bytes


def frames(chunks: dict[str, bytes]) -> bytes:
    raw = b"".join(
        struct.pack(">32sI", bytes.fromhex(d), len(data)) + data for d, data in chunks.items()
    )
    return zstandard.ZstdCompressor().compress(raw)


def put_change(
    path: str, data: bytes, *, mode: int = 0o644, mtime_ns: int = 10**18
) -> dict[str, Any]:
    return {
        "op": "put", "path": path, "kind": "file", "mode": mode, "mtime_ns": mtime_ns,
        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
        "chunks": [[c.digest, c.length] for c in chunk_bytes(data)],
    }


def push_files(
    client: httpx.Client, repo: str, files: dict[str, bytes], *, deletes: tuple[str, ...] = (),
    message: str = "test push", commit_id: str | None = None,
) -> tuple[dict[str, Any], int]:
    """Push ``files`` (path → bytes); returns (commit response, chunk bytes uploaded)."""
    changes = [put_change(p, d) for p, d in files.items()]
    changes += [{"op": "delete", "path": p} for p in deletes]
    wanted: dict[str, bytes] = {}
    for data in files.values():
        for c in chunk_bytes(data):
            wanted[c.digest] = bytes(data[c.offset : c.offset + c.length])
    blobs = [c["sha256"] for c in changes if c["op"] == "put"]
    ask = client.post(
        f"/api/v1/repos/{repo}/missing", json={"blobs": blobs, "chunks": list(wanted)}
    )
    ask.raise_for_status()
    missing = ask.json()["chunks"]
    sent = 0
    for i in range(0, len(missing), 200):
        batch = {d: wanted[d] for d in missing[i : i + 200]}
        up = client.post(f"/api/v1/repos/{repo}/chunks", content=frames(batch),
                         headers={"content-type": "application/x-tain-chunks+zstd"})
        up.raise_for_status()
        sent += sum(len(v) for v in batch.values())
    body = {"changes": changes, "message": message, "commit_id": commit_id or str(uuid.uuid4())}
    done = client.post(f"/api/v1/repos/{repo}/commits", json=body)
    done.raise_for_status()
    return done.json(), sent
