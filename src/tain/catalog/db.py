"""Engine setup and transactions for SQLite (WAL) and PostgreSQL.

Writes run in ``write()`` transactions: on SQLite these start with ``BEGIN IMMEDIATE``
(so two writers never deadlock on a lock upgrade); on PostgreSQL rows that order
writers (a repository's head, the audit chain head) are locked ``FOR UPDATE``.
Foreign database errors are mapped to tain errors here, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from tain.errors import Conflict, StorageError, UsageError

_WRITE = "tain_write"


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=30)
    except (exc.ArgumentError, ImportError) as err:
        raise UsageError(f"bad catalog URL {url!r}: {err}") from err


def _sqlite_engine(url: str) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 60},
        # as many as the server's worker threads: an overflow connection is closed on
        # return, and reopening one (with its PRAGMAs) on every request is costly
        pool_size=40, max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with _mapped_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with _mapped_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except exc.IntegrityError as err:
        raise Conflict(f"catalog constraint violated: {_first_line(err)}") from err
    except exc.OperationalError as err:
        text = _first_line(err)
        if "disk" in text.lower() or "full" in text.lower():
            raise StorageError(f"catalog cannot write: {text}") from err
        raise StorageError(
            f"catalog database error: {text}", hint="check the [catalog] url and the database"
        ) from err


def _first_line(err: exc.DBAPIError) -> str:
    return str(err.orig).splitlines()[0] if err.orig else str(err).splitlines()[0]
