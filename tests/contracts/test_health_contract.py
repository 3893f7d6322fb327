"""The site-health part of the catalog contract (``tain.catalog.health``), on SQLite
and PostgreSQL: the checker's lease, health rows, lag history, ``version_at``."""

from __future__ import annotations

import pytest

from tain.catalog.health import RepoCheck, SiteCheck
from tain.catalog.sql import SqlCatalog
from tain.core.digests import sha256_hex
from tain.core.manifest import Change, Entry, Kind
from tain.errors import NotFound
from tests.catalog import conftest as fixtures
from tests.catalog.conftest import FakeClock

backend = fixtures.backend
db_url = fixtures.db_url
clock = fixtures.clock
catalog = fixtures.catalog


def test_lease_is_exclusive_until_it_expires(catalog: SqlCatalog, clock: FakeClock) -> None:
    assert catalog.acquire_lease("health", "a", ttl=60)
    assert not catalog.acquire_lease("health", "b", ttl=60)
    assert catalog.acquire_lease("health", "a", ttl=60)  # renewing
    assert catalog.acquire_lease("other", "b", ttl=60)  # another lease
    clock.advance(59)
    assert not catalog.acquire_lease("health", "b", ttl=60)  # a renewed at +0 holds to +60
    clock.advance(2)
    assert catalog.acquire_lease("health", "b", ttl=60)  # a's lease expired
    assert not catalog.acquire_lease("health", "a", ttl=60)


def test_released_lease_is_free_at_once(catalog: SqlCatalog) -> None:
    assert catalog.acquire_lease("health", "a", ttl=600)
    catalog.release_lease("health", "b")  # not b's: nothing happens
    assert not catalog.acquire_lease("health", "b", ttl=600)
    catalog.release_lease("health", "a")
    assert catalog.acquire_lease("health", "b", ttl=600)


def site(name: str, at: float, up: bool = True) -> SiteCheck:
    return SiteCheck(name, f"http://{name}", up, "ok" if up else "down: refused", at,
                     "0.1.0" if up else None, 12.5 if up else None, 1e6 if up else None)


def repo(name: str, repo_name: str, at: float, *, revision: int | None = 3,
         rotation: bool = True) -> RepoCheck:
    return RepoCheck(name, repo_name, revision, 1 if revision else None,
                     30.0 if revision else None, rotation, "ok" if rotation else "stale",
                     rotation, 0, 2, at, at - 100, "a/b.txt")


def test_record_and_read_health(catalog: SqlCatalog) -> None:
    assert catalog.site_health() == ([], [])
    sites = [site("b", 10.0), site("a", 10.0, up=False)]
    repos = [repo("a", "debian", 10.0, revision=None, rotation=False), repo("b", "debian", 10.0),
             repo("b", "alpine", 10.0)]
    catalog.record_health(sites, repos, keep_sites=["a", "b"])
    got_sites, got_repos = catalog.site_health()
    assert got_sites == sorted(sites, key=lambda s: s.site)
    assert got_repos == sorted(repos, key=lambda r: (r.site, r.repo))

    newer = repo("b", "debian", 20.0, revision=4)
    catalog.record_health([site("b", 20.0)], [newer], keep_sites=["a", "b"])
    got_sites, got_repos = catalog.site_health()
    assert [s.checked_at for s in got_sites] == [10.0, 20.0]  # a kept, b replaced
    assert newer in got_repos and len(got_repos) == 3


def test_sites_no_longer_configured_are_dropped(catalog: SqlCatalog) -> None:
    catalog.record_health([site("a", 1.0), site("b", 1.0)],
                          [repo("a", "r", 1.0), repo("b", "r", 1.0)], keep_sites=["a", "b"])
    catalog.record_health([site("a", 2.0)], [repo("a", "r", 2.0)], keep_sites=["a"])
    sites, repos = catalog.site_health()
    assert [s.site for s in sites] == ["a"] and [r.site for r in repos] == ["a"]


def test_lag_history(catalog: SqlCatalog) -> None:
    for at in (10.0, 20.0, 30.0):
        catalog.record_health(
            [site("a", at), site("b", at, up=at != 20.0)],
            [repo("a", "r", at, revision=int(at)), repo("b", "r", at, revision=None),
             repo("a", "s", at)],
            keep_sites=["a", "b"],
        )
    history = catalog.lag_history(site="a", repo="r")
    assert [(h.at, h.revision, h.up) for h in history] == [(10.0, 10, True), (20.0, 20, True),
                                                           (30.0, 30, True)]
    b = catalog.lag_history(site="b", repo="r")
    assert [(h.up, h.lag_seconds) for h in b] == [(True, None), (False, None), (True, None)]
    assert [h.at for h in catalog.lag_history(repo="r", since=20.0)] == [20.0, 20.0, 30.0, 30.0]
    assert [h.at for h in catalog.lag_history(site="a", repo="r", limit=2)] == [20.0, 30.0]
    assert len(catalog.lag_history()) == 9
    assert catalog.prune_lag_history(before=25.0) == 6
    assert [h.at for h in catalog.lag_history()] == [30.0, 30.0, 30.0]


def test_version_at_tells_where_a_version_appeared(catalog: SqlCatalog) -> None:
    catalog.create_repo("alpha", public=True, actor="admin")
    data = {n: sha256_hex(f"v{n}".encode()) for n in (1, 2)}
    for n, digest in data.items():
        catalog.add_blob(digest, 10 + n, [])

    def put(path: str, n: int) -> Change:
        return Change("put", path, Entry(path, Kind.FILE, 0o644, 1, data[n], 10 + n))

    catalog.commit("alpha", [put("f", 1)], author="admin")  # 1
    catalog.commit("alpha", [put("g", 1)], author="admin")  # 2
    catalog.commit("alpha", [put("f", 2)], author="admin")  # 3
    at_head = catalog.version_at("alpha", "f")
    assert at_head is not None and at_head.rev_from == 3 and at_head.entry.sha256 == data[2]
    old = catalog.version_at("alpha", "f", 2)
    assert old is not None and (old.rev_from, old.rev_to) == (1, 3)
    g = catalog.version_at("alpha", "g")
    assert g is not None and g.rev_from == 2
    assert catalog.version_at("alpha", "missing") is None
    with pytest.raises(NotFound):
        catalog.version_at("alpha", "f", 9)
    with pytest.raises(NotFound):
        catalog.version_at("nope", "f")
