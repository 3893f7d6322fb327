"""Ed25519 signatures over canonical revision statements.

A site signs, for every revision, the statement ``{"repo", "revision", "changes"}``
where ``changes`` is the revision's change digest (which chains to its parent), so a
holder of the public key can check that a revision log came from the site.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tain.core.manifest import canonical_json
from tain.errors import IntegrityError, UsageError


def new_private_key_pem() -> bytes:
    return private_key_pem(Ed25519PrivateKey.generate())


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError("the signing key is not an Ed25519 key")
    return key


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


def fingerprint(public_text: str) -> str:
    """A short, stable name for a public key: SHA-256 of its raw bytes, hex."""
    return hashlib.sha256(base64.b64decode(public_text)).hexdigest()[:32]


def statement(repo: str, number: int, change_digest: str) -> bytes:
    return canonical_json({"repo": repo, "revision": number, "changes": change_digest})


def sign_revision(key: Ed25519PrivateKey, repo: str, number: int, change_digest: str) -> str:
    return base64.b64encode(key.sign(statement(repo, number, change_digest))).decode()


def verify_revision(
    public_text: str, signature: str, repo: str, number: int, change_digest: str
) -> None:
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_text))
    try:
        public.verify(base64.b64decode(signature), statement(repo, number, change_digest))
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityError(f"revision {number} of {repo}: signature does not verify") from exc
