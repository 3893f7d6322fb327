"""Digests: SHA-256 names blobs, BLAKE3 names chunks."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

import blake3

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def blake3_hex(data: bytes | memoryview) -> str:
    return str(blake3.blake3(data).hexdigest())


def sha256_of_parts(parts: Iterable[bytes | memoryview]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def is_digest(value: str) -> bool:
    """True for a lowercase 64-hex-digit digest (both SHA-256 and BLAKE3-256)."""
    return bool(SHA256_HEX.match(value))


def repr_digest_header(sha256: str) -> str:
    """The RFC 9530 ``Repr-Digest`` value for a SHA-256 given in hex."""
    return "sha-256=:" + base64.b64encode(bytes.fromhex(sha256)).decode() + ":"


def parse_repr_digest(value: str) -> str | None:
    """Extract the SHA-256 (hex) from a ``Repr-Digest``/``Content-Digest`` header."""
    for item in value.split(","):
        key, _, raw = item.strip().partition("=")
        if key.strip().lower() != "sha-256":
            continue
        raw = raw.strip().strip(":")
        try:
            decoded = base64.b64decode(raw, validate=True)
        except ValueError:
            return None
        return decoded.hex() if len(decoded) == 32 else None
    return None
