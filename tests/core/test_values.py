"""Retention, the audit chain, signatures, digests and chunking: plain values in and out."""

from __future__ import annotations

import dataclasses
import os

import pytest

from tain.core.audit import GENESIS, AuditRecord, chain_hash, verify_chain
from tain.core.chunking import MAX_CHUNK, MIN_CHUNK, chunk_bytes
from tain.core.digests import parse_repr_digest, repr_digest_header, sha256_hex
from tain.core.retention import DAY, oldest_kept
from tain.core.signing import (
    fingerprint,
    load_private_key,
    new_private_key_pem,
    public_key_text,
    sign_revision,
    verify_revision,
)
from tain.errors import IntegrityError

NOW = 1_000_000_000.0


def revs(*ages_days: float) -> list[tuple[int, float]]:
    return [(i + 1, NOW - age * DAY) for i, age in enumerate(ages_days)]


def test_retention_keeps_a_suffix() -> None:
    log = revs(10, 8, 5, 2, 0)
    assert oldest_kept(log, keep_last=None, keep_days=None, now=NOW) == 1
    assert oldest_kept(log, keep_last=2, keep_days=None, now=NOW) == 4
    assert oldest_kept(log, keep_last=None, keep_days=6, now=NOW) == 3
    assert oldest_kept(log, keep_last=4, keep_days=1, now=NOW) == 2  # either keeps
    assert oldest_kept(log, keep_last=None, keep_days=0.5, now=NOW) == 5
    assert oldest_kept(revs(30), keep_last=None, keep_days=1, now=NOW) == 1  # head stays
    assert oldest_kept([], keep_last=1, keep_days=None, now=NOW) == 1


def chain(n: int) -> list[AuditRecord]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        h = chain_hash(prev, seq, float(seq), "alice", "commit", f"r@{seq}", {"k": seq})
        out.append(AuditRecord(seq, float(seq), "alice", "commit", f"r@{seq}", {"k": seq}, prev, h))
        prev = h
    return out


def test_audit_chain_detects_edits_removals_and_reorders() -> None:
    good = chain(5)
    assert verify_chain(good) == []
    edited = list(good)
    edited[2] = dataclasses.replace(edited[2], actor="mallory")
    assert any("entry 3" in p for p in verify_chain(edited))
    assert any("missing" in p for p in verify_chain(good[:2] + good[3:]))
    assert verify_chain([good[1], good[0], *good[2:]])


def test_signatures_verify_and_reject_changes() -> None:
    key = load_private_key(new_private_key_pem())
    pub = public_key_text(key)
    sig = sign_revision(key, "deb", 7, "c" * 64)
    verify_revision(pub, sig, "deb", 7, "c" * 64)
    assert len(fingerprint(pub)) == 32
    forged = (("other", 7, "c" * 64), ("deb", 6, "c" * 64), ("deb", 7, "d" * 64))
    for repo, number, digest in forged:
        with pytest.raises(IntegrityError):
            verify_revision(pub, sig, repo, number, digest)


def test_repr_digest_round_trip() -> None:
    sha = sha256_hex(b"hello")
    assert parse_repr_digest(repr_digest_header(sha)) == sha
    assert parse_repr_digest("md5=:abc:, sha-256=:" + repr_digest_header(sha)[9:]) == sha
    assert parse_repr_digest("sha-256=:not base64:") is None
    assert parse_repr_digest("sha-512=:AAAA:") is None


def test_chunking_is_content_defined_and_bounded() -> None:
    data = os.urandom(8 * 1024 * 1024)
    chunks = chunk_bytes(data)
    assert sum(c.length for c in chunks) == len(data)
    assert all(c.length <= MAX_CHUNK for c in chunks)
    assert all(c.length >= MIN_CHUNK for c in chunks[:-1])
    shifted = chunk_bytes(b"!" + data)
    changed = {c.digest for c in shifted} - {c.digest for c in chunks}
    assert len(changed) <= 2  # an insert at the front disturbs only the first chunk or two
    assert chunk_bytes(b"") == []
