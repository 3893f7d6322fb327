"""The head signer as a site-wide singleton: of two processes' sites on one catalog,
only the lease holder signs, it signs heads the other process committed, and after
the holder stops the other takes over. Rotating the key records, for every
repository, the first revision the new key signs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.config import load
from tain.core.digests import sha256_hex
from tain.core.manifest import Change, Entry, Kind
from tain.core.signing import verify_revision
from tain.core.statements import head_from_json, revision_keys
from tain.service.heads import HeadSigner, rotate_key
from tain.service.lease import LeaseKeeper
from tain.service.setup import create_site
from tain.service.site import Site, open_site


@pytest.fixture
def two_sites(tmp_path: Path) -> Iterator[tuple[Site, Site]]:
    """Two ``Site``s on one site directory: one catalog, one key, as two nodes."""
    create_site(tmp_path, listen="127.0.0.1:1", admin="admin", env={})
    a, b = open_site(load(tmp_path)), open_site(load(tmp_path))
    a.catalog.create_repo("r", public=False, actor="admin")
    yield a, b
    a.close()
    b.close()


def _commit(site: Site, n: int) -> None:
    data = f"v{n}".encode()
    site.catalog.add_blob(sha256_hex(data), len(data), [])
    site.catalog.commit("r", [Change("put", "f", Entry("f", Kind.FILE, 0o644, n,
                                                       sha256_hex(data), len(data)))],
                        author="admin", sign=site.sign)
    site.on_change.run("r")


def _signed_revision(site: Site) -> int | None:
    raw = site.catalog.get_head("r")
    return None if raw is None else head_from_json(raw).revision


def test_only_the_holder_signs_and_the_other_takes_over(two_sites: tuple[Site, Site]) -> None:
    a, b = two_sites
    lease_a = LeaseKeeper(a.catalog, "head-signer", ttl=60, holder="a")
    lease_b = LeaseKeeper(b.catalog, "head-signer", ttl=60, holder="b")
    signer_a, signer_b = HeadSigner(a, lease_a), HeadSigner(b, lease_b)
    b.on_change.add(signer_b.mark)
    assert lease_a.tick() and not lease_b.tick()
    _commit(b, 1)  # committed on b, which does not hold the lease
    assert signer_b.run_once() == [] and _signed_revision(b) is None
    assert signer_a.run_once() == ["r"]  # a finds it in the catalog
    assert _signed_revision(b) == 1
    assert signer_a.run_once() == []  # nothing new
    lease_a.stop()  # a stops: b takes over at its next attempt
    assert lease_b.tick()
    _commit(a, 2)
    assert signer_a.run_once() == []
    assert signer_b.run_once() == ["r"] and _signed_revision(a) == 2


def test_rotation_records_where_the_new_key_starts(two_sites: tuple[Site, Site]) -> None:
    a, _ = two_sites
    _commit(a, 1)
    _commit(a, 2)
    old = a.public_key
    link = rotate_key(a, actor="admin")
    assert link.starts == {"r": 3} and link.old == old and link.new == a.public_key
    _commit(a, 3)
    chain = a.catalog.key_chain()
    assert revision_keys(chain, "r", 2) == [old]
    assert revision_keys(chain, "r", 3) == [a.public_key]
    rev = a.catalog.get_revision("r", 3)
    verify_revision(a.public_key, str(rev.signature), "r", 3, rev.change_digest)
