"""Cost follows the change: a commit touching k paths of a large tree writes O(k) entry
rows, and every query over entries is an index search, never a walk of the table.

Counted in rows and read from query plans, never timed. The plan checks are SQLite's
(``EXPLAIN QUERY PLAN`` of the statements the catalog really sends); SQLite plans
without statistics, so a bad index choice shows up there first.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tain.catalog.sql import SqlCatalog, open_catalog
from tain.core.digests import sha256_hex
from tain.core.manifest import Change, Entry, Kind
from tests.catalog.conftest import FakeClock, fresh_pg_database

SHA = sha256_hex(b"one blob for every file")
SHA2 = sha256_hex(b"a second blob")
PER_DIR = 100
MTIME = 1_700_000_000_000_000_000


@dataclass
class Big:
    catalog: SqlCatalog
    url: str
    files: int
    sqlite_path: Path | None = None

    @property
    def dirs(self) -> int:
        return self.files // PER_DIR


def name(i: int) -> str:
    return f"d{i // PER_DIR:03d}/f{i:05d}"


def file(path: str, sha: str = SHA, size: int = 1) -> Entry:
    return Entry(path, Kind.FILE, 0o644, MTIME, sha, size)


def build(url: str, files: int, sqlite_path: Path | None = None) -> Big:
    cat = open_catalog(url, clock=FakeClock())
    cat.create_repo("big", public=False, actor="admin")
    cat.add_blob(SHA, 1, [])
    cat.add_blob(SHA2, 2, [])
    changes = [Change("put", name(i), file(name(i))) for i in range(files)]
    result = cat.commit("big", changes, author="admin")
    assert (result.revision.number, result.revision.files) == (1, files)
    assert result.revision.added == files + files // PER_DIR
    return Big(cat, url, files, sqlite_path)


@pytest.fixture(scope="module")
def big_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Big]:
    path = tmp_path_factory.mktemp("big") / "catalog.db"
    big = build(f"sqlite:///{path}", 20_000, path)
    try:
        yield big
    finally:
        big.catalog.close()


@pytest.fixture(scope="module")
def big_postgres() -> Iterator[Big]:
    # Fewer files: each put is a network round trip; the counts do not depend on size.
    with fresh_pg_database() as url:
        big = build(url, 2_000)
        try:
            yield big
        finally:
            big.catalog.close()


@pytest.fixture
def big(backend: str, request: pytest.FixtureRequest) -> Big:
    built: Big = request.getfixturevalue(f"big_{backend}")
    return built


def count(big: Big, where: str) -> int:
    with big.catalog._db.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM entries WHERE {where}").scalar())


@contextmanager
def statements(cat: SqlCatalog) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement (with its parameters) the catalog sends meanwhile."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    engine = cat._db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


_ENTRIES = re.compile(r"\b(FROM|UPDATE|JOIN)\s+entries\b", re.IGNORECASE)
_SEARCH = re.compile(
    r"^SEARCH entries USING (?:(?:COVERING )?INDEX (\w+)|INTEGER PRIMARY KEY) \((.*)\)$"
)
PATH_INDEX = "ix_entries_repo_id_path_rev_from"


def entry_plans(big: Big, sent: list[tuple[str, Any]]) -> list[list[str]]:
    """The plan lines that touch ``entries``, one list per statement reading it."""
    assert big.sqlite_path is not None
    plans = []
    with closing(sqlite3.connect(big.sqlite_path)) as conn:
        for statement, parameters in sent:
            if not _ENTRIES.search(statement):
                continue
            rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plans.append([r[3] for r in rows if "entries" in r[3]])
    return plans


def searches(plan: list[str]) -> list[tuple[str, str]]:
    """(index, constraint) of each access to entries; fails on anything else (a scan)."""
    out = []
    for line in plan:
        m = _SEARCH.match(line)
        assert m, f"not an index search: {line!r}"
        out.append((m.group(1) or "PRIMARY KEY", m.group(2)))
    assert out, "no access to entries in the plan"
    return out


def test_commit_cost_follows_the_change(big: Big) -> None:
    cat, n, dirs = big.catalog, big.files, big.dirs
    assert count(big, "1 = 1") == n + dirs

    changes = [
        Change("put", name(0), file(name(0), SHA2, 2)),            # modify
        Change("delete", name(PER_DIR)),                           # delete a file
        Change("put", "fresh/file", file("fresh/file")),          # add, with a new dir
    ]
    with statements(cat) as sent:
        rev = cat.commit("big", changes, author="admin").revision
    assert rev.number == 2
    assert (rev.added, rev.modified, rev.deleted) == (2, 1, 1)
    assert (rev.files, rev.bytes) == (n, n + 1)
    assert count(big, "rev_from = 2") == 3       # new version, "fresh", "fresh/file"
    assert count(big, "rev_to = 2") == 2         # old version, deleted file
    assert count(big, "1 = 1") == n + dirs + 3
    assert len(sent) < 40, "statements per commit must not grow with the tree"
    if big.sqlite_path:
        # every read and update of entries goes by path (or by the id just read)
        plans = entry_plans(big, sent)
        assert plans
        for plan in plans:
            for index, constraint in searches(plan):
                assert (index, constraint.split("=")[0]) in (
                    (PATH_INDEX, "repo_id"), ("PRIMARY KEY", "rowid")), plan
                assert index != PATH_INDEX or "path" in constraint, plan

    # deleting a directory closes exactly its subtree
    with statements(cat) as sent:
        rev = cat.commit("big", [Change("delete", "d005")], author="admin").revision
    assert (rev.number, rev.deleted, rev.files) == (3, PER_DIR + 1, n - PER_DIR)
    assert count(big, "rev_to = 3") == PER_DIR + 1
    assert count(big, "rev_from = 3") == 0
    assert len(sent) < 40
    if big.sqlite_path:
        plans = entry_plans(big, sent)
        assert plans
        for plan in plans:
            assert [i for i, _ in searches(plan)] == [PATH_INDEX]

    # an unchanged put writes nothing at all
    result = cat.commit("big", [Change("put", name(1), file(name(1)))], author="admin")
    assert (result.created, result.revision.number) == (False, 3)
    assert count(big, "1 = 1") == n + dirs + 3


READS: dict[str, tuple[Callable[[SqlCatalog], object], set[str]]] = {
    "lookup": (lambda c: c.lookup("big", name(4242), 1),
               {PATH_INDEX}),
    "lookup at head": (lambda c: c.lookup("big", name(4242)),
                       {PATH_INDEX}),
    "list_dir": (lambda c: c.list_dir("big", "d042", 1),
                 {"ix_entries_repo_id_parent_rev_from"}),
    "list_dir of the root": (lambda c: c.list_dir("big", ""),
                             {"ix_entries_repo_id_parent_rev_from"}),
    "history": (lambda c: c.history("big", name(4242)),
                {PATH_INDEX}),
    "tree_page below a prefix": (lambda c: c.tree_page("big", 1, prefix="d042", limit=10),
                                 {PATH_INDEX}),
    "tree_page from a path": (lambda c: c.tree_page("big", 1, after=name(4242), limit=10),
                              {PATH_INDEX}),
    "diff": (lambda c: c.diff("big", 1, 1),
             {"ix_entries_repo_id_rev_from", "ix_entries_repo_id_rev_to"}),
    "unreferenced_blobs": (lambda c: c.unreferenced_blobs(created_before=0),
                           {"ix_entries_sha256"}),
}


@pytest.mark.parametrize("read", list(READS))
def test_reads_use_an_index(big_sqlite: Big, read: str) -> None:
    call, indexes = READS[read]
    with statements(big_sqlite.catalog) as sent:
        call(big_sqlite.catalog)
    plans = entry_plans(big_sqlite, sent)
    assert len(plans) == 1
    used = searches(plans[0])
    assert {index for index, _ in used} == indexes, plans[0]
    for index, constraint in used:
        # a search on repo_id alone would walk the whole repository
        assert constraint != "repo_id=?", (index, constraint)
