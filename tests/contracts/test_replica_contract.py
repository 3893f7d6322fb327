"""The replication part of the catalog contract, on SQLite and PostgreSQL: a revision
copied from another catalog gets the same number and digest, and anything that does not
hash to the signed digest, or does not follow the head, writes nothing."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.catalog.sql import SqlCatalog, open_catalog
from tain.core.digests import sha256_hex
from tain.core.manifest import Change, Entry, Kind
from tain.errors import Conflict, IntegrityError
from tests.catalog import conftest as fixtures
from tests.catalog.conftest import FakeClock

backend = fixtures.backend
db_url = fixtures.db_url
clock = fixtures.clock
catalog = fixtures.catalog


@pytest.fixture
def source(tmp_path: Path, clock: FakeClock) -> Iterator[SqlCatalog]:
    """The upstream: always SQLite, in its own file."""
    cat = open_catalog(f"sqlite:///{tmp_path / 'upstream.sqlite3'}", clock=clock)
    yield cat
    cat.close()


def _file(path: str, n: int) -> Entry:
    return Entry(path, Kind.FILE, 0o644, n, sha256_hex(str(n).encode()), n)


def _history(cat: SqlCatalog) -> None:
    cat.create_repo("r", public=False, actor="a")
    for n in (1, 2):
        cat.add_blob(sha256_hex(str(n).encode()), n, [])
    cat.commit("r", [Change("put", "d/a", _file("d/a", 1))], author="a", sign=lambda *_: "s")
    cat.commit("r", [Change("put", "d", _file("d", 2))], author="a")  # dir -> file


def _copy_blobs(to: SqlCatalog) -> None:
    for n in (1, 2):
        to.add_blob(sha256_hex(str(n).encode()), n, [])


def test_replicated_revisions_match_the_upstream(source: SqlCatalog,
                                                 catalog: SqlCatalog) -> None:
    _history(source)
    catalog.create_repo("r", public=False, actor="mirror")
    _copy_blobs(catalog)
    for item in source.change_log("r", 0):
        assert item.changes is not None
        got = catalog.replicate(item.revision, item.changes, actor="mirror")
        assert (got.number, got.change_digest, got.signature) == (
            item.revision.number, item.revision.change_digest, item.revision.signature)
    assert list(catalog.iter_tree("r")) == list(source.iter_tree("r"))
    assert [i.changes for i in catalog.change_log("r", 0)] == \
        [i.changes for i in source.change_log("r", 0)]


def test_a_bad_change_list_or_number_writes_nothing(source: SqlCatalog,
                                                    catalog: SqlCatalog) -> None:
    _history(source)
    catalog.create_repo("r", public=False, actor="mirror")
    _copy_blobs(catalog)
    first, second = source.change_log("r", 0)
    assert first.changes is not None and second.changes is not None
    with pytest.raises(Conflict, match="does not follow"):
        catalog.replicate(second.revision, second.changes, actor="mirror")
    forged = json.loads(first.changes)
    forged[-1]["mtime_ns"] += 1
    with pytest.raises(IntegrityError, match="change digest"):
        catalog.replicate(first.revision, json.dumps(forged), actor="mirror")
    wrong = dataclasses.replace(first.revision, change_digest="0" * 64)
    with pytest.raises(IntegrityError, match="change digest"):
        catalog.replicate(wrong, first.changes, actor="mirror")
    assert catalog.get_repo("r").head == 0 and list(catalog.iter_tree("r")) == []
