"""Signed statements beyond the per-revision signature: the expiring head statement
and the key rotation chain (TUF's timestamp and root rotation, in miniature).

A head statement says "the head of REPO is REVISION, its change digest is C, the full
manifest at it hashes to M, and this is true until EXPIRES", signed by the site key
whose fingerprint it names. A rotation statement says "key OLD hands over to key NEW",
signed by OLD, so a client that pinned OLD can follow the chain to the current key.
A rotation also names, per repository, the first revision NEW signs (``starts``), so
a revision's signature is checked against the one key that was current when it was
made (``revision_keys``): a stolen new key cannot re-sign old history.
Values in, values out: no files, no sockets.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tain.core.manifest import Entry, Kind, canonical_json
from tain.core.signing import fingerprint
from tain.errors import IntegrityError


def manifest_line(entry: Entry) -> bytes:
    """One canonical manifest line: the entry's JSON, then a newline. The same bytes as
    ``canonical_json(entry.to_json())``, written out directly: a manifest digest walks
    the whole tree, so this runs once per entry of every signed head."""
    head = (f'{{"kind":"{entry.kind.value}","mode":{int(entry.mode)},'
            f'"mtime_ns":{int(entry.mtime_ns)},"path":{_string(entry.path)}')
    if entry.kind is Kind.FILE:
        tail = f',"sha256":{_string(entry.sha256)},"size":{int(entry.size)}}}\n'
    elif entry.kind is Kind.SYMLINK:
        tail = f',"target":{_string(entry.target)}}}\n'
    else:
        tail = "}\n"
    return (head + tail).encode()


def _string(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def manifest_digest(entries: Iterable[Entry]) -> str:
    """SHA-256 over the canonical manifest lines of ``entries`` (given in path order)."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(manifest_line(entry))
    return digest.hexdigest()


class ManifestLines:
    """The manifest lines of one repository state, by path, followed by diffs: the
    digest of the next state then costs its changes and one sort of the paths instead
    of a walk of the whole tree. (Python sorts ``str`` by code point, which is the byte
    order of UTF-8: the order of the catalog's paths.)"""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._lines = {e.path: manifest_line(e) for e in entries}

    def __len__(self) -> int:
        return len(self._lines)

    def apply(self, changes: Iterable[tuple[str, Entry | None]]) -> None:
        """Each (path, its entry now, None: gone)."""
        for path, entry in changes:
            if entry is None:
                self._lines.pop(path, None)
            else:
                self._lines[path] = manifest_line(entry)

    def digest(self) -> str:
        """``manifest_digest`` of the state these lines describe."""
        digest = hashlib.sha256()
        for path in sorted(self._lines):
            digest.update(self._lines[path])
        return digest.hexdigest()


@dataclass(frozen=True)
class HeadStatement:
    repo: str
    revision: int
    change_digest: str
    manifest_digest: str
    expires: float
    key: str  # fingerprint of the signing key
    signature: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "type": "tain-head", "repo": self.repo, "revision": self.revision,
            "change_digest": self.change_digest, "manifest_digest": self.manifest_digest,
            "expires": self.expires, "key": self.key,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}


def sign_head(private: Ed25519PrivateKey, head: HeadStatement, public_text: str) -> HeadStatement:
    unsigned = HeadStatement(head.repo, head.revision, head.change_digest,
                             head.manifest_digest, head.expires, fingerprint(public_text))
    signature = base64.b64encode(private.sign(canonical_json(unsigned.body()))).decode()
    return HeadStatement(**{**unsigned.__dict__, "signature": signature})


def head_from_json(raw: Any) -> HeadStatement:
    try:
        return HeadStatement(
            repo=str(raw["repo"]), revision=int(raw["revision"]),
            change_digest=str(raw["change_digest"]),
            manifest_digest=str(raw["manifest_digest"]), expires=float(raw["expires"]),
            key=str(raw["key"]), signature=str(raw["signature"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError("the head statement is malformed") from exc


def verify_head(public_text: str, head: HeadStatement, *, now: float) -> None:
    """Signature by ``public_text`` (whose fingerprint the statement names), then expiry."""
    if fingerprint(public_text) != head.key:
        raise IntegrityError(
            f"the head statement of {head.repo} is signed by key {head.key}, "
            f"not the trusted key {fingerprint(public_text)}")
    if not verify_bytes(public_text, head.signature, canonical_json(head.body())):
        raise IntegrityError(f"the head statement of {head.repo} has a bad signature",
                             hint="the site or something between is forging it")
    if head.expires <= now:
        raise IntegrityError(
            f"the head statement of {head.repo} (revision {head.revision}) expired",
            hint="the site serves a frozen, stale state; try another site")


@dataclass(frozen=True)
class Rotation:
    """Key ``old`` hands over to ``new`` (public keys, base64), signed by ``old``.
    The first link of a chain has no ``old``: it names the root key."""

    seq: int
    old: str | None
    new: str
    at: float
    signature: str | None = None
    # repository -> first revision ``new`` signs; None in chains made before it existed
    starts: Mapping[str, int] | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "tain-rotation", "seq": self.seq, "old": self.old,
                                "new": self.new, "at": self.at}
        if self.starts is not None:
            body["starts"] = dict(sorted(self.starts.items()))
        return body

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature,
                "fingerprint": fingerprint(self.new)}


def sign_rotation(old_private: Ed25519PrivateKey, rotation: Rotation) -> Rotation:
    signature = base64.b64encode(old_private.sign(canonical_json(rotation.body()))).decode()
    return Rotation(rotation.seq, rotation.old, rotation.new, rotation.at, signature,
                    rotation.starts)


def rotation_from_json(raw: Any) -> Rotation:
    try:
        old, starts = raw.get("old"), raw.get("starts")
        return Rotation(int(raw["seq"]), None if old is None else str(old), str(raw["new"]),
                        float(raw["at"]), raw.get("signature"),
                        None if starts is None else {str(k): int(v) for k, v in starts.items()})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IntegrityError("a key rotation statement is malformed") from exc


def follow_chain(pinned: str, chain: Sequence[Rotation]) -> list[str]:
    """The public keys trusted from ``pinned`` (a fingerprint or a public key): the
    pinned key and every key a verified rotation hands over to after it, in order."""
    pin = pinned if len(pinned) == 32 else _safe_fingerprint(pinned)
    start = next((i for i, r in enumerate(chain) if fingerprint(r.new) == pin), None)
    if start is None:
        raise IntegrityError(f"the site's key chain does not contain the pinned key {pin}",
                             hint="the site may be an impostor, or you pinned a wrong key")
    trusted = [chain[start].new]
    for link in chain[start + 1:]:
        if link.old != trusted[-1] or not link.signature or not verify_bytes(
                link.old, link.signature, canonical_json(link.body())):
            raise IntegrityError(f"key rotation {link.seq} is not signed by the key before it")
        trusted.append(link.new)
    return trusted


def revision_keys(chain: Sequence[Rotation], repo: str, number: int) -> list[str]:
    """The keys that may have signed revision ``number`` of ``repo``: the key current
    when it was made. A rotation without ``starts`` (older chains) cannot tell, so
    across it both keys stay allowed. A repository a rotation does not name was
    created after it: the new key signs it from revision 1."""
    if not chain:
        return []
    allowed = [chain[0].new]
    for link in chain[1:]:
        if link.starts is None:
            allowed = [*allowed, link.new]
        elif number >= link.starts.get(repo, 1):
            allowed = [link.new]
    return allowed


def chain_passes(chain: Sequence[Rotation], pinned: str) -> bool:
    """Whether ``pinned`` (a fingerprint or a public key) is a key of ``chain``."""
    pin = pinned if len(pinned) == 32 else _safe_fingerprint(pinned)
    return any(fingerprint(link.new) == pin for link in chain)


def verify_bytes(public_text: str, signature: str, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_text)).verify(
            base64.b64decode(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _safe_fingerprint(public_text: str) -> str:
    try:
        return fingerprint(public_text)
    except ValueError as exc:
        raise IntegrityError(f"{public_text[:60]!r} is neither a key fingerprint (32 hex "
                             "digits) nor a public key (base64)") from exc
