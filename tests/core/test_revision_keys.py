"""Which key may sign which revision (``revision_keys``), pins (``chain_passes``), the
rotation statement's signed starts, and the new ``[mirror]`` and ``[server]`` keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tain.config import parse
from tain.config_mirror import check_key, mirror_section, parse_mirror
from tain.core.manifest import canonical_json
from tain.core.signing import fingerprint, load_private_key, new_private_key_pem, public_key_text
from tain.core.statements import (
    Rotation,
    chain_passes,
    follow_chain,
    revision_keys,
    rotation_from_json,
    sign_rotation,
    verify_bytes,
)
from tain.errors import IntegrityError, UsageError

K = [load_private_key(new_private_key_pem()) for _ in range(3)]
P = [public_key_text(k) for k in K]


def _chain(starts1: dict[str, int] | None, starts2: dict[str, int] | None) -> list[Rotation]:
    return [Rotation(0, None, P[0], 1.0),
            sign_rotation(K[0], Rotation(1, P[0], P[1], 2.0, starts=starts1)),
            sign_rotation(K[1], Rotation(2, P[1], P[2], 3.0, starts=starts2))]


def test_each_revision_has_the_key_current_when_it_was_made() -> None:
    chain = _chain({"deb": 4, "rpm": 2}, {"deb": 9})
    assert [revision_keys(chain, "deb", n) for n in (1, 3, 4, 8, 9, 50)] == [
        [P[0]], [P[0]], [P[1]], [P[1]], [P[2]], [P[2]]]
    # "rpm" is not named by the second rotation: it did not exist then (deleted), so
    # the "rpm" that has revisions now was created after it, by the newest key
    assert revision_keys(chain, "rpm", 1) == [P[2]]
    assert revision_keys(chain, "new", 1) == [P[2]]  # created after both rotations
    assert revision_keys(chain[:2], "rpm", 1) == [P[0]]
    assert revision_keys(chain[:2], "rpm", 2) == [P[1]]
    assert revision_keys([], "deb", 1) == []


def test_rotations_without_starts_allow_both_keys_across_them() -> None:
    chain = _chain(None, {"deb": 5})
    assert revision_keys(chain, "deb", 2) == [P[0], P[1]]
    assert revision_keys(chain, "deb", 5) == [P[2]]


def test_the_starts_are_signed_with_the_rotation() -> None:
    link = _chain({"deb": 4}, None)[1]
    assert verify_bytes(P[0], str(link.signature), canonical_json(link.body()))
    parsed = rotation_from_json(link.to_json())
    assert parsed == link and parsed.starts == {"deb": 4}
    moved = Rotation(link.seq, link.old, link.new, link.at, link.signature, {"deb": 1})
    with pytest.raises(IntegrityError, match="rotation 1"):  # a forger moved the boundary
        follow_chain(P[0], [Rotation(0, None, P[0], 1.0), moved])
    legacy = sign_rotation(K[0], Rotation(1, P[0], P[1], 2.0))
    assert "starts" not in legacy.body()  # chains signed before starts existed verify
    assert follow_chain(P[0], [Rotation(0, None, P[0], 1.0), legacy]) == [P[0], P[1]]


def test_a_pin_is_a_key_of_the_chain() -> None:
    chain = _chain({}, {})
    assert chain_passes(chain, fingerprint(P[1])) and chain_passes(chain, P[2])
    assert not chain_passes(chain, "0" * 32)
    assert not chain_passes(chain[:2], P[2])
    with pytest.raises(IntegrityError, match="neither a key fingerprint"):
        chain_passes(chain, "not a key")


def test_mirror_key_and_prune_deleted_settings() -> None:
    config = parse_mirror({"upstreams": ["http://a"], "key": fingerprint(P[0]),
                           "prune_deleted": True}, {})
    assert config is not None and config.key == fingerprint(P[0]) and config.prune_deleted
    config = parse_mirror({"upstreams": ["http://a"], "key": P[1]}, {})
    assert config is not None and config.key == P[1] and not config.prune_deleted
    for bad in ({"key": "abc"}, {"key": "Z" * 32}, {"key": 7}, {"prune_deleted": "yes"}):
        with pytest.raises(UsageError, match=r"\[mirror\]"):
            parse_mirror({"upstreams": ["http://a"], **bad}, {})
    assert check_key(None) is None
    assert f'key = "{fingerprint(P[0])}"' in mirror_section("http://a/", None, None,
                                                           fingerprint(P[0]))
    assert "key =" not in mirror_section("http://a", "t", None)


def test_server_lease(tmp_path: Path) -> None:
    assert parse({}, tmp_path, {}).lease_seconds == 30
    assert parse({"server": {"lease": "5s"}}, tmp_path, {}).lease_seconds == 5
    with pytest.raises(UsageError, match="lease"):
        parse({"server": {"lease": "1s"}}, tmp_path, {})
