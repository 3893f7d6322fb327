"""Point-in-time copies of the catalog, and loading them back, for backup and restore.

SQLite
    ``sqlite3``'s online backup API copies the live database file page by page in one
    step, inside one read transaction: a consistent snapshot while the site keeps
    writing (WAL mode lets writers go on). The copy is an ordinary SQLite file.

PostgreSQL
    A logical export: every table, rows in primary-key order, read in one
    ``REPEATABLE READ, READ ONLY`` transaction (one snapshot of the whole database),
    written as zstd-compressed JSON lines. It needs no ``pg_dump`` of the server's major
    version, and it loads into PostgreSQL or SQLite alike, so a site can move between
    them. Format: a header object, then per table an object ``{"table", "columns"}``
    followed by one JSON array per row. Floats survive exactly (JSON keeps their repr,
    which the audit chain hashes); bytes would be ``{"b64": ...}``.

Loading
    The target database is brought to the snapshot's schema revision with the normal
    migrations, must hold no data yet, receives every row in foreign-key order in one
    transaction (PostgreSQL sequences are moved past the highest ids), and is then
    migrated to the current schema by ``open_catalog``.

Facts a backup needs about the snapshot (schema revision, repository heads, the
blobs it names) are read from the snapshot itself, never from the live catalog.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import zstandard
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from tain.catalog import schema as t
from tain.catalog.db import create_engine
from tain.catalog.migrate import upgrade
from tain.errors import IntegrityError, StorageError, UsageError

SQLITE_FILE = "catalog.sqlite3"
EXPORT_FILE = "catalog.jsonl.zst"
EXPORT_FORMAT = "tain-catalog-export"
SKIPPED_TABLES = frozenset({"alembic_version"})  # recreated by the migrations
BATCH = 1000


@dataclass(frozen=True)
class SnapshotInfo:
    kind: str  # "sqlite" or "postgresql"
    file: str  # SQLITE_FILE or EXPORT_FILE
    schema_revision: str | None
    repos: dict[str, int]  # name -> head revision
    blobs: list[tuple[str, int, bool]]  # (sha256, size, used by a kept revision), sorted


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise UsageError(f"catalog URL {url!r} names no database file")
    return Path(database)


def snapshot_catalog(url: str, dest_dir: Path) -> SnapshotInfo:
    """Write a consistent snapshot of the catalog at ``url`` into ``dest_dir``."""
    if is_sqlite(url):
        target = dest_dir / SQLITE_FILE
        _sqlite_online_backup(sqlite_path(url), target)
        with _sqlite_engine(target, readonly=True) as engine, engine.connect() as conn:
            return _info(conn, "sqlite", SQLITE_FILE)
    engine = create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            )
            info = _info(conn, "postgresql", EXPORT_FILE)
            _export(conn, dest_dir / EXPORT_FILE, info.schema_revision)
            return info
    finally:
        engine.dispose()


def load_catalog(snapshot: Path, kind: str, url: str) -> None:
    """Load a snapshot file into the (empty) catalog at ``url``."""
    if kind == "sqlite" and is_sqlite(url):
        target = sqlite_path(url)
        if target.exists():
            raise UsageError(f"{target} already exists", hint="restore into an empty site")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snapshot, target)
        return
    with _tables_of(snapshot, kind) as (revision, tables):
        engine = create_engine(url)
        try:
            _refuse_data(engine)
            if revision:
                upgrade(engine, revision)
            _import(engine, tables)
        finally:
            engine.dispose()


# -- reading a snapshot ---------------------------------------------------------------------


def _info(conn: Connection, kind: str, file: str) -> SnapshotInfo:
    revision = _schema_revision(conn)
    repos = {r.name: r.head for r in conn.execute(sa.select(t.repos.c.name, t.repos.c.head))}
    used = sa.exists().where(t.entries.c.sha256 == t.blobs.c.sha256)
    rows = conn.execute(
        sa.select(t.blobs.c.sha256, t.blobs.c.size, used.label("used"))
    ).all()
    blobs = sorted((r.sha256, int(r.size), bool(r.used)) for r in rows)
    return SnapshotInfo(kind, file, revision, repos, blobs)


def _schema_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    value = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return str(value) if value else None


def _sqlite_online_backup(source: Path, target: Path) -> None:
    try:
        src = sqlite3.connect(source, timeout=60)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the catalog {source}: {exc}") from exc
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one consistent read transaction
            # a self-contained file: no -wal/-shm beside it (the site turns WAL back on)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot copy the catalog {source}: {exc}") from exc
    finally:
        src.close()


@contextmanager
def _sqlite_engine(path: Path, *, readonly: bool) -> Iterator[Engine]:
    mode = "ro&immutable=1" if readonly else "rwc"  # immutable: no -shm/-wal files

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{path}?mode={mode}", uri=True)

    engine = sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


Table = tuple[str, list[str], Iterator[list[Any]]]


@contextmanager
def _tables_of(snapshot: Path, kind: str) -> Iterator[tuple[str | None, Iterator[Table]]]:
    """The snapshot's schema revision and its tables, each with an iterator of rows."""
    if kind == "sqlite":
        with _sqlite_engine(snapshot, readonly=True) as engine, engine.connect() as conn:
            yield _schema_revision(conn), _tables_from(conn)
        return
    if kind != "postgresql":
        raise UsageError(f"unknown catalog snapshot kind {kind!r}")
    with open(snapshot, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        lines = io.TextIOWrapper(reader, encoding="utf-8")
        header = json.loads(lines.readline() or "{}")
        if header.get("format") != EXPORT_FORMAT:
            raise IntegrityError(f"{snapshot} is not a tain catalog export")
        yield header.get("schema_revision"), _tables_from_lines(lines)


def _tables_from(conn: Connection) -> Iterator[Table]:
    meta = sa.MetaData()
    meta.reflect(conn)
    for table in meta.sorted_tables:
        if table.name in SKIPPED_TABLES:
            continue
        columns = [c.name for c in table.columns]
        order = list(table.primary_key.columns) or list(table.columns)
        result = conn.execute(sa.select(table).order_by(*order))
        yield table.name, columns, (list(row) for row in result)


def _tables_from_lines(lines: io.TextIOWrapper) -> Iterator[Table]:
    pending: dict[str, Any] | None = None

    def rows() -> Iterator[list[Any]]:
        nonlocal pending
        for line in lines:
            value = json.loads(line)
            if isinstance(value, dict):
                pending = value
                return
            yield [_decode(v) for v in value]

    header = json.loads(lines.readline() or "null")
    while isinstance(header, dict):
        pending = None
        yield str(header["table"]), list(header["columns"]), rows()
        header = pending


# -- writing an export ------------------------------------------------------------------------


def _export(conn: Connection, path: Path, revision: str | None) -> None:
    with open(path, "wb") as raw:
        writer = zstandard.ZstdCompressor(level=3).stream_writer(raw)
        out = io.TextIOWrapper(writer, encoding="utf-8")
        out.write(_line({"format": EXPORT_FORMAT, "version": 1, "schema_revision": revision}))
        for name, columns, rows in _tables_from(conn):
            out.write(_line({"table": name, "columns": columns}))
            for row in rows:
                out.write(_line([_encode(v) for v in row]))
        out.flush()
        writer.flush(zstandard.FLUSH_FRAME)
        raw.flush()


def _line(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | memoryview):
        return {"b64": base64.b64encode(bytes(value)).decode()}
    return str(value)


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    return value


# -- loading ------------------------------------------------------------------------------------


def _refuse_data(engine: Engine) -> None:
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in ("repos", "users", "audit"):
            if inspector.has_table(name) and conn.execute(
                sa.select(sa.func.count()).select_from(sa.table(name))
            ).scalar():
                raise UsageError(
                    f"the catalog at {engine.url.render_as_string(hide_password=True)} "
                    "already holds data",
                    hint="restore into an empty database",
                )


def _import(engine: Engine, tables: Iterator[Table]) -> None:
    meta = sa.MetaData()
    with engine.begin() as conn:
        meta.reflect(conn)
        loaded: list[sa.Table] = []
        for name, columns, rows in tables:
            table = meta.tables.get(name)
            if table is None:
                raise IntegrityError(f"the snapshot has table {name!r}, the schema has not")
            conn.execute(table.delete())  # rows the migrations seeded (the audit head)
            batch: list[dict[str, Any]] = []
            for row in rows:
                batch.append(dict(zip(columns, row, strict=True)))
                if len(batch) >= BATCH:
                    conn.execute(table.insert(), batch)
                    batch = []
            if batch:
                conn.execute(table.insert(), batch)
            loaded.append(table)
        if engine.dialect.name == "postgresql":
            for table in loaded:
                _advance_sequences(conn, table)


def _advance_sequences(conn: Connection, table: sa.Table) -> None:
    for column in table.primary_key.columns:
        seq = conn.exec_driver_sql(
            "SELECT pg_get_serial_sequence(%(t)s, %(c)s)", {"t": table.name, "c": column.name}
        ).scalar()
        if seq:
            conn.exec_driver_sql(
                f'SELECT setval(%(s)s, COALESCE(MAX("{column.name}"), 1), '  # noqa: S608
                f'MAX("{column.name}") IS NOT NULL) FROM "{table.name}"',
                {"s": seq},
            )
