"""``LeaseKeeper`` on a real catalog with an injected clock: one holder at a time, a
dead holder's lease expires and another takes it, a clean stop hands over at once, and
a holder that cannot renew stops claiming the lease by its own clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.catalog.sql import SqlCatalog, open_catalog
from tain.service.lease import LeaseKeeper, new_holder
from tests.catalog.conftest import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def catalog(tmp_path: Path, clock: FakeClock) -> Iterator[SqlCatalog]:
    cat = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}", clock=clock)
    yield cat
    cat.close()


def _keeper(catalog: SqlCatalog, clock: FakeClock, holder: str) -> LeaseKeeper:
    return LeaseKeeper(catalog, "alerts", ttl=30, holder=holder, clock=clock)


def test_one_holder_at_a_time_and_takeover_after_expiry(catalog: SqlCatalog,
                                                       clock: FakeClock) -> None:
    a, b = _keeper(catalog, clock, "a"), _keeper(catalog, clock, "b")
    assert a.tick() and a.held
    assert not b.tick() and not b.held
    clock.advance(20)
    assert a.tick()  # renewed: holds until +50
    clock.advance(20)
    assert not b.tick()
    clock.advance(11)  # a died: it renewed at +20, its lease ended at +50
    assert not a.held  # by a's own clock too
    assert b.tick() and b.held
    assert not a.tick() and not a.held  # a came back: b holds it now


def test_a_clean_stop_hands_over_at_once(catalog: SqlCatalog, clock: FakeClock) -> None:
    a, b = _keeper(catalog, clock, "a"), _keeper(catalog, clock, "b")
    assert a.tick()
    a.stop()
    assert not a.held and a.stopped
    assert b.tick()
    assert b.wait_held(0)


def test_a_holder_that_cannot_renew_lets_go_by_its_own_clock(tmp_path: Path,
                                                            clock: FakeClock) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.db'}", clock=clock)
    a = _keeper(catalog, clock, "a")
    assert a.tick()
    catalog.close()
    (tmp_path / "c.db").unlink()
    (tmp_path / "c.db").mkdir()  # the catalog is unreachable now
    clock.advance(10)
    assert a.tick()  # the renewal failed, but the lease is still valid for 20 s
    clock.advance(21)
    assert not a.tick() and not a.held


def test_holder_names_differ_per_keeper() -> None:
    assert new_holder() != new_holder()
    with pytest.raises(ValueError):
        LeaseKeeper(None, "x", ttl=0)  # type: ignore[arg-type]
