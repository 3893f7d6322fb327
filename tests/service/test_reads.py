"""The download path's read cache: immutable lookups cached, repository rows expire."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tain.catalog.sql import SqlCatalog, open_catalog
from tain.core.manifest import Change, Entry, Kind
from tain.errors import NotFound
from tain.service.reads import NotCached, ReadCache


class Counting:
    """Counts the catalog reads the cache lets through."""

    def __init__(self, inner: SqlCatalog) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> Any:
        self.calls += 1
        return getattr(self.inner, name)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqlCatalog]:
    cat = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    cat.create_repo("r", public=True, actor="t")
    cat.add_blob("a" * 64, 1, [])
    yield cat
    cat.close()


def put(catalog: SqlCatalog, path: str) -> None:
    entry = Entry(path, Kind.FILE, 0o644, 1, "a" * 64, 1)
    catalog.commit("r", [Change("put", path, entry)], author="t")


def test_lookups_are_cached_and_forget_shows_new_commits(catalog: SqlCatalog) -> None:
    now = [100.0]
    counting = Counting(catalog)
    cache = ReadCache(counting, lambda: now[0], ttl=1.0)  # type: ignore[arg-type]
    assert cache.lookup(cache.repo("r"), "x", None) is None  # empty repository
    put(catalog, "x")
    assert cache.lookup(cache.repo("r"), "x", None) is None  # repo row still cached
    cache.forget("r")
    repo = cache.repo("r")
    assert repo.head == 1
    first = cache.lookup(repo, "x", None)
    calls = counting.calls
    assert cache.lookup(repo, "x", None) == first and counting.calls == calls
    put(catalog, "y")
    now[0] += 2  # past the TTL: another process's commit becomes visible
    assert cache.repo("r").head == 2


def test_revisions_out_of_range_still_raise(catalog: SqlCatalog) -> None:
    put(catalog, "x")
    cache = ReadCache(catalog, lambda: 0.0)
    repo = cache.repo("r")
    with pytest.raises(NotFound):
        cache.lookup(repo, "x", 5)
    with pytest.raises(NotFound):
        cache.repo("nosuch")


def test_non_blocking_repo_reads_only_a_fresh_cached_row(catalog: SqlCatalog) -> None:
    now = [100.0]
    counting = Counting(catalog)
    cache = ReadCache(counting, lambda: now[0], ttl=1.0)  # type: ignore[arg-type]
    with pytest.raises(NotCached):
        cache.repo("r", block=False)  # nothing cached yet
    assert counting.calls == 0
    fetched = cache.repo("r")
    calls = counting.calls
    assert cache.repo("r", block=False) == fetched and counting.calls == calls
    now[0] += 2  # stale: the caller must read in a worker thread
    with pytest.raises(NotCached):
        cache.repo("r", block=False)
    cache.repo("r")
    cache.forget("r")
    with pytest.raises(NotCached):
        cache.repo("r", block=False)
    assert counting.calls == calls + 1
