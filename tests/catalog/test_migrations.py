"""The Alembic migrations build exactly the schema of ``tain.catalog.schema``, on SQLite
and on PostgreSQL, and running them again changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from tain.catalog.db import create_engine
from tain.catalog.migrate import alembic_config, upgrade
from tain.catalog.schema import metadata
from tain.catalog.sql import open_catalog
from tain.core.audit import GENESIS
from tests.catalog.conftest import FakeClock

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The catalog's own engine (same pragmas/options as in production), not migrated."""
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


def schema_diffs(engine: Engine, target: sa.MetaData = metadata) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, target))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def snapshot(engine: Engine) -> dict[str, object]:
    """Tables with their columns, indexes and unique constraints, as reflected."""
    inspector = sa.inspect(engine)
    out: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        out[table] = (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            sorted((u["name"], tuple(u["column_names"]))
                   for u in inspector.get_unique_constraints(table)),
        )
    return out


def test_migrations_build_the_schema_of_schema_py(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert schema_diffs(engine) == []
    assert set(sa.inspect(engine).get_table_names()) == {*metadata.tables, "alembic_version"}


def test_the_comparison_sees_a_difference(engine: Engine) -> None:
    """Guards the test above: a schema.py that drifted from the migrations is noticed."""
    upgrade(engine)
    drifted = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["repos"].append_column(sa.Column("extra", sa.Integer, nullable=True))
    sa.Index("ix_users_created_at", drifted.tables["users"].c.created_at)
    kinds = sorted(d[0] for d in schema_diffs(engine, drifted))  # type: ignore[index]
    assert kinds == ["add_column", "add_index"]


def test_column_details_that_matter(engine: Engine) -> None:
    """Byte-order paths and full-precision times: what the catalog's logic relies on."""
    upgrade(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT table_name, column_name, collation_name, data_type "
                "FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND "
                "((table_name = 'entries' AND column_name IN ('path', 'parent')) OR "
                " (table_name = 'audit' AND column_name = 'at') OR "
                " (table_name = 'revisions' AND column_name = 'created_at'))"
            ).all()
        got = {(r.table_name, r.column_name): (r.collation_name, r.data_type) for r in rows}
        assert got == {
            ("entries", "path"): ("C", "text"),
            ("entries", "parent"): ("C", "text"),
            ("audit", "at"): (None, "double precision"),
            ("revisions", "created_at"): (None, "double precision"),
        }
    else:
        with engine.connect() as conn:
            ddl = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
            ).scalar()
        assert ddl is not None
        assert "COLLATE" not in ddl.upper()  # BINARY, SQLite's default: byte order


def test_upgrading_again_changes_nothing(db_url: str, engine: Engine) -> None:
    upgrade(engine)
    before = snapshot(engine)
    cat = open_catalog(db_url, clock=FakeClock())  # upgrades once more
    try:
        cat.create_repo("kept", public=True, actor="admin")
    finally:
        cat.close()
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert snapshot(engine) == before
    assert schema_diffs(engine) == []
    cat = open_catalog(db_url, clock=FakeClock())
    try:
        assert [r.name for r in cat.list_repos()] == ["kept"]
        assert cat.verify_audit() == (1, [])
    finally:
        cat.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_head").scalar() == 1


def test_audit_head_is_seeded(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, seq, hash FROM audit_head").all()
    assert [tuple(r) for r in rows] == [(1, 0, GENESIS)]


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    upgrade(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert schema_diffs(engine) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT seq FROM audit_head WHERE id = 1").scalar() == 0
