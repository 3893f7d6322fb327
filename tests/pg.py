"""The PostgreSQL server the tests use (127.0.0.1:5432, or ``TAIN_TEST_PG_URL``).

When it cannot be reached PostgreSQL tests are skipped, unless ``CI`` is set: then they
fail, so a CI run never passes without having tested PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

PG_ADMIN_URL = os.environ.get(
    "TAIN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_pg_problem: list[str] = []  # cached: [] untested, [""] reachable, [reason] not


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
