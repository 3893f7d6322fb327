"""The scale-out part of the catalog contract (``tain.catalog.scaleout`` and the key
chain's revision starts), on SQLite and PostgreSQL: heads that need a statement, a
mirror following its upstream's retention, dropping a trace, rotations at the heads."""

from __future__ import annotations

import pytest

from tain.catalog.mirrorstate import Trace
from tain.catalog.sql import SqlCatalog
from tain.core.digests import sha256_hex
from tain.core.manifest import Change, Entry, Kind
from tain.core.statements import Rotation
from tain.errors import NotFound
from tests.catalog import conftest as fixtures

backend = fixtures.backend
db_url = fixtures.db_url
clock = fixtures.clock
catalog = fixtures.catalog


def _commit_versions(catalog: SqlCatalog, repo: str, count: int) -> list[str]:
    """``count`` revisions, each a new version of one file; the blobs' digests."""
    catalog.create_repo(repo, public=False, actor="a")
    shas = []
    for n in range(1, count + 1):
        data = f"{repo} v{n}".encode()
        sha = sha256_hex(data)
        catalog.add_blob(sha, len(data), [])
        catalog.commit(repo, [Change("put", "f", Entry("f", Kind.FILE, 0o644, n, sha,
                                                       len(data)))], author="a")
        shas.append(sha)
    return shas


def test_unsigned_heads_and_drop_trace(catalog: SqlCatalog) -> None:
    catalog.create_repo("empty", public=False, actor="a")
    _commit_versions(catalog, "r", 1)
    assert catalog.unsigned_heads() == ["r"]  # an empty repository needs none
    catalog.put_head("r", 1, {"revision": 1})
    assert catalog.unsigned_heads() == []
    data = b"more"
    catalog.add_blob(sha256_hex(data), 4, [])
    catalog.commit("r", [Change("put", "g", Entry("g", Kind.FILE, 0o644, 1, sha256_hex(data),
                                                  4))], author="a")
    assert catalog.unsigned_heads() == ["r"]  # the statement is for revision 1
    catalog.record_trace(Trace("r", "http://up", 1, 1, 1.0, 1.0, 0, 0.0, None))
    catalog.drop_trace("other")  # none: no error
    assert [t.repo for t in catalog.list_traces()] == ["r"]
    catalog.drop_trace("r")
    assert catalog.list_traces() == []


def test_follow_retention_drops_what_the_upstream_dropped(catalog: SqlCatalog) -> None:
    shas = _commit_versions(catalog, "r", 4)
    dropped = catalog.follow_retention("r", oldest_kept=3, keep_last=2, keep_days=None,
                                       actor="mirror")
    assert dropped == 2  # the rows of v1 and v2
    repo = catalog.get_repo("r")
    assert (repo.oldest_kept, repo.keep_last, repo.keep_days) == (3, 2, None)
    with pytest.raises(NotFound, match="retention"):
        catalog.lookup("r", "f", rev=2)
    assert catalog.lookup("r", "f", rev=3) is not None
    free = {sha for sha, _ in catalog.unreferenced_blobs(created_before=fixtures.START + 1e9)}
    assert free == set(shas[:2])
    [entry] = catalog.audit_entries(action="retention.follow")
    assert entry.actor == "mirror" and entry.target == "r"
    # the same again changes nothing and is not audited again
    assert catalog.follow_retention("r", oldest_kept=3, keep_last=2, keep_days=None,
                                    actor="mirror") == 0
    assert len(catalog.audit_entries(action="retention.follow")) == 1
    # never past the head, whatever the upstream says
    catalog.follow_retention("r", oldest_kept=9, keep_last=1, keep_days=2.5, actor="mirror")
    repo = catalog.get_repo("r")
    assert (repo.oldest_kept, repo.keep_last, repo.keep_days) == (4, 1, 2.5)
    assert catalog.lookup("r", "f", rev=4) is not None
    with pytest.raises(NotFound):
        catalog.follow_retention("nope", oldest_kept=1, keep_last=None, keep_days=None,
                                 actor="mirror")


def test_rotations_record_the_first_revision_the_new_key_signs(catalog: SqlCatalog) -> None:
    _commit_versions(catalog, "r", 2)
    catalog.create_repo("empty", public=False, actor="a")
    catalog.start_key_chain("K0", 1.0)
    seen: list[dict[str, int]] = []

    def link(starts: dict[str, int]) -> Rotation:
        seen.append(starts)
        return Rotation(1, "K0", "K1", 2.0, "sig", starts)

    catalog.rotate_at_heads(link, actor="admin")
    assert seen == [{"r": 3, "empty": 1}]
    chain = catalog.key_chain()
    assert [(k.seq, k.new, k.starts) for k in chain] == [(0, "K0", None),
                                                          (1, "K1", {"empty": 1, "r": 3})]
    [entry] = catalog.audit_entries(action="key.rotate")
    assert entry.actor == "admin"
    # a mirror copies a chain: the starts travel with it, and a legacy link has none
    copied = [chain[0], chain[1], Rotation(2, "K1", "K2", 3.0, "sig2")]
    catalog.set_key_chain(copied, actor="mirror")
    assert [k.starts for k in catalog.key_chain()] == [None, {"empty": 1, "r": 3}, None]
