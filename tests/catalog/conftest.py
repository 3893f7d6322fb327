"""Catalog fixtures: a ``catalog`` on SQLite (a file in tmp_path) and on PostgreSQL
(a fresh database per test), both driven by a fake clock the test can advance.

PostgreSQL is the server on 127.0.0.1:5432 (override with ``TAIN_TEST_PG_URL``, an
admin URL of a database the tests may connect to in order to create their own). When
it cannot be reached the PostgreSQL cases are skipped, unless ``CI`` is set: then they
fail, so a CI run never passes without having tested PostgreSQL.

``tests/contracts/test_catalog_contract.py`` imports these fixtures.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tain.catalog.sql import SqlCatalog, open_catalog

PG_ADMIN_URL = os.environ.get(
    "TAIN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
START = 1_800_000_000.0  # 2027-01-15 08:00 UTC
DAY = 86400.0

_pg_problem: list[str] = []  # cached: [] untested, [""] reachable, [reason] not


class FakeClock:
    """A ``Callable[[], float]`` clock that moves only when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _probe_postgres() -> str:
    """"" when the PostgreSQL server answers, else why not."""
    if not _pg_problem:
        engine = sa.create_engine(PG_ADMIN_URL, poolclass=NullPool,
                                  connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            _pg_problem.append("")
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            _pg_problem.append(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {first}")
        finally:
            engine.dispose()
    return _pg_problem[0]


def require_postgres() -> None:
    """Skip (or, with CI set, fail) the calling test when PostgreSQL is unreachable."""
    problem = _probe_postgres()
    if problem:
        if in_ci():
            pytest.fail(f"{problem} (CI is set, so PostgreSQL tests must run)")
        pytest.skip(problem)


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty database ``tain_test_<uuid>``; yields its URL, drops it after."""
    require_postgres()
    name = f"tain_test_{uuid.uuid4().hex}"
    admin = sa.create_engine(PG_ADMIN_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(
                hide_password=False
            )
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


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
