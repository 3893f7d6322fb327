"""Catalog fixtures: a ``catalog`` on SQLite (a file in tmp_path) and on PostgreSQL
(a fresh database per test), both driven by a fake clock the test can advance.

PostgreSQL is the server on 127.0.0.1:5432 (override with ``TAIN_TEST_PG_URL``, an
admin URL of a database the tests may connect to in order to create their own). When
it cannot be reached the PostgreSQL cases are skipped, unless ``CI`` is set: then they
fail, so a CI run never passes without having tested PostgreSQL.

``tests/contracts/test_catalog_contract.py`` imports these fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tain.catalog.sql import SqlCatalog, open_catalog
from tests.pg import PG_ADMIN_URL, fresh_pg_database, in_ci, require_postgres

__all__ = ["PG_ADMIN_URL", "in_ci", "require_postgres"]

START = 1_800_000_000.0  # 2027-01-15 08:00 UTC
DAY = 86400.0

class FakeClock:
    """A ``Callable[[], float]`` clock that moves only when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        with fresh_pg_database() as url:
            yield url


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty catalog database of the parametrised kind, private to the test."""
    with database_url(backend, tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def catalog(db_url: str, clock: FakeClock) -> Iterator[SqlCatalog]:
    cat = open_catalog(db_url, clock=clock)
    try:
        yield cat
    finally:
        cat.close()
