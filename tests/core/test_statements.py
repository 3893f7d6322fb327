"""Head statements, key rotation chains and manifest digests, with plain values."""

from __future__ import annotations

import hashlib

import pytest

from tain.config_mirror import parse_mirror, parse_signing
from tain.core.manifest import Entry, Kind, canonical_json
from tain.core.signing import fingerprint, load_private_key, new_private_key_pem, public_key_text
from tain.core.statements import (
    HeadStatement,
    Rotation,
    follow_chain,
    head_from_json,
    manifest_digest,
    manifest_line,
    sign_head,
    sign_rotation,
    verify_head,
)
from tain.errors import IntegrityError, UsageError


def _key():  # type: ignore[no-untyped-def]
    return load_private_key(new_private_key_pem())


def test_head_statement_round_trip_forgery_and_expiry() -> None:
    key = _key()
    public = public_key_text(key)
    head = sign_head(key, HeadStatement("deb", 7, "c" * 64, "m" * 64, 1000.0, ""), public)
    parsed = head_from_json(head.to_json())
    verify_head(public, parsed, now=999.0)
    with pytest.raises(IntegrityError, match="expired"):
        verify_head(public, parsed, now=1000.0)
    forged = head_from_json({**head.to_json(), "revision": 8})
    with pytest.raises(IntegrityError, match="bad signature"):
        verify_head(public, forged, now=0.0)
    with pytest.raises(IntegrityError, match="not the trusted key"):
        verify_head(public_key_text(_key()), parsed, now=0.0)
    with pytest.raises(IntegrityError, match="malformed"):
        head_from_json({"repo": "deb"})


def test_key_chain_is_followed_from_the_pinned_key_only_through_signed_links() -> None:
    k0, k1, k2 = _key(), _key(), _key()
    p0, p1, p2 = (public_key_text(k) for k in (k0, k1, k2))
    chain = [Rotation(0, None, p0, 1.0),
             sign_rotation(k0, Rotation(1, p0, p1, 2.0)),
             sign_rotation(k1, Rotation(2, p1, p2, 3.0))]
    assert follow_chain(fingerprint(p0), chain) == [p0, p1, p2]
    assert follow_chain(p1, chain) == [p1, p2]  # a public key pins too
    bad = [*chain[:2], sign_rotation(k0, Rotation(2, p1, p2, 3.0))]  # signed by the wrong key
    with pytest.raises(IntegrityError, match="rotation 2"):
        follow_chain(fingerprint(p0), bad)
    with pytest.raises(IntegrityError, match="does not contain the pinned key"):
        follow_chain("0" * 32, chain)


def test_manifest_digest_is_over_canonical_lines_in_path_order() -> None:
    entries = [Entry("a", Kind.DIR, 0o755, 1), Entry("a/f", Kind.FILE, 0o644, 2, "f" * 64, 3)]
    lines = (b'{"kind":"dir","mode":493,"mtime_ns":1,"path":"a"}\n'
             b'{"kind":"file","mode":420,"mtime_ns":2,"path":"a/f","sha256":"' + b"f" * 64
             + b'","size":3}\n')
    assert manifest_digest(entries) == hashlib.sha256(lines).hexdigest()
    assert manifest_digest([]) == hashlib.sha256(b"").hexdigest()


def test_mirror_and_signing_sections() -> None:
    assert parse_mirror({}, {}) is None
    config = parse_mirror({"upstreams": ["https://a/", "http://b"], "token_env": "T",
                           "repos": ["deb"], "poll": "5m", "long_poll": "10s"}, {"T": "s"})
    assert config is not None and config.upstreams == ("https://a", "http://b")
    assert config.token == "s" and config.repos == ("deb",) and config.poll_seconds == 300
    assert config.long_poll_seconds == 10
    for bad in ({"upstreams": []}, {"upstreams": ["ftp://x"]},
                {"upstreams": ["http://a"], "token_env": "MISSING"},
                {"upstreams": ["http://a"], "repos": "some"},
                {"upstreams": ["http://a"], "parallel": 0}):
        with pytest.raises(UsageError, match=r"\[mirror\]"):
            parse_mirror(bad, {})
    assert parse_signing({"expires": "1d"}).expires_seconds == 86400
    with pytest.raises(UsageError, match="at least 60s"):
        parse_signing({"expires": "10s"})


def test_manifest_lines_are_the_canonical_json_of_each_entry() -> None:
    """Written out directly for speed; every digest a mirror or an older site made
    depends on these bytes being exactly the canonical JSON."""
    odd_names = ["plain.txt", 'quote"and\\back', "tab\tnew\nline", "ünï/cödé ✓", "emoji 🎉",
                 "ctl\x01\x1f", "a/b/c d", "\u2028sep"]
    entries = []
    for i, name in enumerate(odd_names):
        entries += [
            Entry(name, Kind.FILE, 0o644 + i, 10**18 + i, "ab" * 32, i * 1000),
            Entry(name, Kind.FILE, 0o755, 0, None, 0),
            Entry(name, Kind.DIR, 0o2775, -5),
            Entry(name, Kind.SYMLINK, 0o777, 7, target=f"../{name}"),
            Entry(name, Kind.SYMLINK, 0o777, 7, target=None),
        ]
    for entry in entries:
        assert manifest_line(entry) == canonical_json(entry.to_json()) + b"\n", entry
