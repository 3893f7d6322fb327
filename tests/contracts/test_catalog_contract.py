"""The one catalog contract (``tain.catalog.sql.SqlCatalog``), run against SQLite and
PostgreSQL alike: repositories, commits, the versioned tree, retention, blobs, access
and the audit log."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from tain.catalog.agents import AgentReport
from tain.catalog.models import Revision, Role
from tain.catalog.sql import SqlCatalog
from tain.core.chunking import ChunkRef
from tain.core.digests import blake3_hex, sha256_hex
from tain.core.manifest import Change, Entry, Kind
from tain.errors import Conflict, MissingData, NotFound, UsageError
from tests.catalog import conftest as fixtures
from tests.catalog.conftest import DAY, FakeClock

# The fixtures live beside the catalog tests (backend x clock -> catalog); binding them
# here makes pytest offer them to this module too.
backend = fixtures.backend
db_url = fixtures.db_url
clock = fixtures.clock
catalog = fixtures.catalog

MTIME = 1_700_000_000_000_000_000
ADMIN = "admin"


# --- helpers ----------------------------------------------------------------------


def sha(n: int) -> str:
    return sha256_hex(f"blob {n}".encode())


def size(n: int) -> int:
    return 100 + n


def file(path: str, n: int = 0, *, mtime: int = MTIME, mode: int = 0o644) -> Entry:
    return Entry(path, Kind.FILE, mode, mtime, sha(n), size(n))


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, Kind.DIR, mode, MTIME)


def link(path: str, target: str) -> Entry:
    return Entry(path, Kind.SYMLINK, 0o777, MTIME, target=target)


def put(entry: Entry) -> Change:
    return Change("put", entry.path, entry)


def delete(path: str) -> Change:
    return Change("delete", path)


def add_blobs(cat: SqlCatalog, *ns: int) -> None:
    for n in ns:
        cat.add_blob(sha(n), size(n), [])


def new_repo(cat: SqlCatalog, name: str = "alpha", *blob_numbers: int) -> None:
    cat.create_repo(name, public=False, actor=ADMIN)
    add_blobs(cat, *(blob_numbers or range(10)))


def commit(cat: SqlCatalog, *changes: Change, repo: str = "alpha", **kw: Any) -> int:
    result = cat.commit(repo, list(changes), author=ADMIN, **kw)
    assert result.created
    return result.revision.number


def paths_at(cat: SqlCatalog, rev: int | None = None, repo: str = "alpha") -> list[str]:
    return [e.path for e in cat.iter_tree(repo, rev)]


@contextmanager
def raw(url: str) -> Iterator[Connection]:
    """A connection of its own to the catalog database, in one transaction."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def count_rows(url: str, table: str, where: str = "1 = 1") -> int:
    with raw(url) as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE {where}").scalar())


def actions(cat: SqlCatalog) -> list[str]:
    return [r.action for r in cat.audit_entries(limit=10_000)]


# --- repositories -----------------------------------------------------------------


def test_create_get_list_repos(catalog: SqlCatalog, clock: FakeClock) -> None:
    made = catalog.create_repo("beta", public=True, description="the b one", actor=ADMIN)
    assert (made.name, made.public, made.description) == ("beta", True, "the b one")
    assert (made.head, made.oldest_kept, made.keep_last, made.keep_days) == (0, 1, None, None)
    assert made.created_at == clock.now
    catalog.create_repo("alpha", public=False, actor=ADMIN)
    assert catalog.get_repo("beta") == made
    assert [r.name for r in catalog.list_repos()] == ["alpha", "beta"]
    assert catalog.get_repo("alpha").public is False


def test_create_repo_rejects_duplicates_and_bad_names(catalog: SqlCatalog) -> None:
    catalog.create_repo("alpha", public=False, actor=ADMIN)
    with pytest.raises(Conflict):
        catalog.create_repo("alpha", public=True, actor=ADMIN)
    for bad in ("Alpha", "has space", "", "-dash", "a/b", "api", "x" * 64):
        with pytest.raises(UsageError):
            catalog.create_repo(bad, public=False, actor=ADMIN)
    assert [r.name for r in catalog.list_repos()] == ["alpha"]


def test_update_repo_settings(catalog: SqlCatalog) -> None:
    catalog.create_repo("alpha", public=False, actor=ADMIN)
    got = catalog.update_repo("alpha", actor=ADMIN, public=True, description="d",
                              keep_last=3, keep_days=1.5)
    assert (got.public, got.description, got.keep_last, got.keep_days) == (True, "d", 3, 1.5)
    assert catalog.get_repo("alpha") == got
    # untouched settings stay; None clears a limit
    got = catalog.update_repo("alpha", actor=ADMIN, keep_last=None)
    assert (got.public, got.description, got.keep_last, got.keep_days) == (True, "d", None, 1.5)
    with pytest.raises(UsageError):
        catalog.update_repo("alpha", actor=ADMIN, keep_last=0)
    with pytest.raises(UsageError):
        catalog.update_repo("alpha", actor=ADMIN, keep_days=0)
    assert catalog.get_repo("alpha") == got


def test_unknown_repo_is_not_found(catalog: SqlCatalog) -> None:
    catalog.create_repo("alpha", public=False, actor=ADMIN)
    calls = [
        lambda: catalog.get_repo("nope"),
        lambda: catalog.update_repo("nope", actor=ADMIN, public=True),
        lambda: catalog.delete_repo("nope", actor=ADMIN),
        lambda: catalog.commit("nope", [delete("x")], author=ADMIN),
        lambda: catalog.lookup("nope", "x"),
        lambda: catalog.list_dir("nope", ""),
        lambda: catalog.history("nope", "x"),
        lambda: catalog.list_revisions("nope"),
        lambda: catalog.apply_retention("nope", actor=ADMIN),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()


def test_delete_repo_removes_everything(catalog: SqlCatalog, db_url: str) -> None:
    new_repo(catalog)
    catalog.create_repo("other", public=False, actor=ADMIN)
    commit(catalog, put(file("a/x", 1)))
    commit(catalog, put(file("a/y", 2)), repo="other")
    catalog.create_user("bob", is_admin=False, actor=ADMIN)
    catalog.set_grant("bob", "alpha", Role.READ, actor=ADMIN)
    catalog.set_grant("bob", "other", Role.WRITE, actor=ADMIN)

    catalog.delete_repo("alpha", actor=ADMIN)

    with pytest.raises(NotFound):
        catalog.get_repo("alpha")
    assert [g.repo for g in catalog.list_grants(user="bob")] == ["other"]
    assert paths_at(catalog, repo="other") == ["a", "a/y"]
    assert count_rows(db_url, "entries") == 2
    assert count_rows(db_url, "revisions") == 1
    # the name is free again and starts from scratch
    assert catalog.create_repo("alpha", public=False, actor=ADMIN).head == 0
    assert catalog.lookup("alpha", "a/x") is None


# --- commits ------------------------------------------------------------------------


def test_commit_creates_ancestor_directories(catalog: SqlCatalog, clock: FakeClock) -> None:
    new_repo(catalog)
    result = catalog.commit("alpha", [put(file("a/b/c.txt", 1))], author="alice",
                            message="first")
    assert result.created
    rev = result.revision
    assert (rev.repo, rev.number, rev.author, rev.message) == ("alpha", 1, "alice", "first")
    assert rev.created_at == clock.now
    assert paths_at(catalog) == ["a", "a/b", "a/b/c.txt"]
    for d in ("a", "a/b"):
        got = catalog.lookup("alpha", d)
        assert got is not None
        assert got.kind is Kind.DIR
    assert catalog.lookup("alpha", "a/b/c.txt") == file("a/b/c.txt", 1)
    assert [e.path for e in catalog.list_dir("alpha", "")] == ["a"]
    assert [e.path for e in catalog.list_dir("alpha", "a")] == ["a/b"]
    assert catalog.list_dir("alpha", "a/b") == [file("a/b/c.txt", 1)]
    assert catalog.get_repo("alpha").head == 1
    # an explicitly put directory keeps its own attributes
    commit(catalog, put(directory("d", 0o700)), put(file("d/e", 2)))
    assert catalog.lookup("alpha", "d") == directory("d", 0o700)


def test_counts_over_a_series_of_commits(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    seen: list[Revision] = []

    def step(*changes: Change) -> tuple[int, int, int, int, int]:
        number = commit(catalog, *changes)
        r = catalog.get_revision("alpha", number)
        assert r.number == number == len(seen) + 1
        seen.append(r)
        return r.files, r.bytes, r.added, r.modified, r.deleted

    # entries counted in added/modified/deleted include directories; files/bytes are
    # totals of the whole tree at that revision
    assert step(put(file("d/a", 1)), put(file("d/b", 2)), put(file("top", 3))) == (
        3, size(1) + size(2) + size(3), 4, 0, 0)
    assert step(put(file("d/a", 4))) == (3, size(4) + size(2) + size(3), 0, 1, 0)
    assert step(put(file("d/sub/c", 5)), delete("top")) == (
        3, size(4) + size(2) + size(5), 2, 0, 1)
    assert step(put(link("l", "d/a"))) == (3, size(4) + size(2) + size(5), 1, 0, 0)
    assert step(delete("d")) == (0, 0, 0, 0, 5)  # d, d/a, d/b, d/sub, d/sub/c
    assert step(put(file("d", 6))) == (1, size(6), 1, 0, 0)
    assert step(put(file("d", 6, mode=0o600))) == (1, size(6), 0, 1, 0)
    assert catalog.get_revision("alpha") == seen[-1]
    assert [r.number for r in catalog.list_revisions("alpha")] == [7, 6, 5, 4, 3, 2, 1]
    assert [r.number for r in catalog.list_revisions("alpha", limit=2, before=6)] == [5, 4]
    # each revision's digest chains to its parent's
    assert len({r.change_digest for r in seen}) == len(seen)


def test_commit_signature_slot(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    calls = []

    def sign(repo: str, number: int, digest: str) -> str:
        calls.append((repo, number, digest))
        return f"sig:{repo}:{number}"

    result = catalog.commit("alpha", [put(file("x", 1))], author=ADMIN, sign=sign)
    assert result.revision.signature == "sig:alpha:1"
    assert calls == [("alpha", 1, result.revision.change_digest)]
    assert catalog.get_revision("alpha", 1).signature == "sig:alpha:1"


def test_put_identical_to_live_entry_is_a_no_op(catalog: SqlCatalog, db_url: str) -> None:
    new_repo(catalog)
    first = catalog.commit("alpha", [put(file("d/x", 1)), put(link("l", "d/x"))],
                           author=ADMIN).revision
    rows, audit = count_rows(db_url, "entries"), len(actions(catalog))
    for again in ([put(file("d/x", 1))], [put(link("l", "d/x"))], [put(directory("d"))],
                  [put(file("d/x", 1)), put(directory("d")), put(link("l", "d/x"))]):
        result = catalog.commit("alpha", again, author=ADMIN)
        assert not result.created
        assert result.revision == first
    assert catalog.get_repo("alpha").head == 1
    assert count_rows(db_url, "entries") == rows
    assert len(actions(catalog)) == audit
    # a different mtime is a change
    assert commit(catalog, put(file("d/x", 1, mtime=MTIME + 1))) == 2


def test_empty_change_lists(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    with pytest.raises(Conflict):
        catalog.commit("alpha", [], author=ADMIN)
    with pytest.raises(Conflict):
        catalog.commit("alpha", [delete("nothing")], author=ADMIN)
    commit(catalog, put(file("x", 1)))
    result = catalog.commit("alpha", [], author=ADMIN)
    assert (result.created, result.revision.number) == (False, 1)


def test_repeated_commit_id_returns_the_first_revision(
    catalog: SqlCatalog, db_url: str
) -> None:
    new_repo(catalog)
    first = catalog.commit("alpha", [put(file("x", 1))], author=ADMIN, commit_id="c-1")
    assert first.created
    assert first.revision.commit_id == "c-1"
    commit(catalog, put(file("y", 2)))
    rows, revs = count_rows(db_url, "entries"), count_rows(db_url, "revisions")
    audit = len(actions(catalog))
    # a retry: even with other changes and a stale base, the first result comes back
    for changes in ([put(file("x", 1))], [put(file("z", 3))]):
        again = catalog.commit("alpha", changes, author=ADMIN, commit_id="c-1", base_rev=0)
        assert not again.created
        assert again.revision == first.revision
    assert catalog.get_repo("alpha").head == 2
    assert catalog.lookup("alpha", "z") is None
    assert (count_rows(db_url, "entries"), count_rows(db_url, "revisions")) == (rows, revs)
    assert len(actions(catalog)) == audit
    # commit ids are per repository
    new_repo(catalog, "beta", 99)
    other = catalog.commit("beta", [put(file("x", 1))], author=ADMIN, commit_id="c-1")
    assert other.created
    assert (other.revision.repo, other.revision.number) == ("beta", 1)


def test_stale_base_rev_is_a_conflict(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    assert commit(catalog, put(file("x", 1)), base_rev=0) == 1
    assert commit(catalog, put(file("y", 2)), base_rev=1) == 2
    for stale in (0, 1, 3):
        with pytest.raises(Conflict, match="revision 2"):
            catalog.commit("alpha", [put(file("z", 3))], author=ADMIN, base_rev=stale)
    assert catalog.get_repo("alpha").head == 2
    assert catalog.lookup("alpha", "z") is None


def test_unknown_blob_is_missing_data_and_nothing_is_written(
    catalog: SqlCatalog, db_url: str
) -> None:
    new_repo(catalog, "alpha", 1, 2)
    commit(catalog, put(file("x", 1)))
    rows, audit = count_rows(db_url, "entries"), len(actions(catalog))
    with pytest.raises(MissingData) as caught:
        catalog.commit("alpha", [put(file("d/new", 2)), put(file("d/lost", 7)),
                                 delete("x")], author=ADMIN, commit_id="c-7")
    assert caught.value.details["missing"] == [sha(7)]
    assert catalog.get_repo("alpha").head == 1
    assert paths_at(catalog) == ["x"]
    assert count_rows(db_url, "entries") == rows
    assert len(actions(catalog)) == audit
    # once the blob is there, the same commit (and commit id) goes through
    add_blobs(catalog, 7)
    assert commit(catalog, put(file("d/new", 2)), put(file("d/lost", 7)), delete("x"),
                  commit_id="c-7") == 2
    assert paths_at(catalog) == ["d", "d/lost", "d/new"]


def test_delete_directory_removes_only_its_subtree(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    # byte-wise neighbours of "dir/": '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f),
    # '0' (0x30) is the exclusive end of the range scan, 'a'.. and 'é' come after
    neighbours = ["dir-x/c", "dir.txt", "dir0/d", "dira", "diré/f", "dis/g", "di", "di-x",
                  "di.y/z"]
    inside = ["dir/a", "dir/sub/b", "dir/sub/deeper/c", "dir/zz", "dir/é", "dir/-"]
    commit(catalog, *(put(file(p, i % 10)) for i, p in enumerate(neighbours + inside)))
    before = paths_at(catalog)
    assert {"dir", "dir0", "dir-x", "diré"} <= set(before)

    # dir, dir/-, dir/a, dir/sub, dir/sub/b, dir/sub/deeper, dir/sub/deeper/c, dir/zz, dir/é
    assert catalog.commit("alpha", [delete("dir")], author=ADMIN).revision.deleted == 9
    after = paths_at(catalog)
    assert after == [p for p in before if p != "dir" and not p.startswith("dir/")]
    assert set(neighbours) <= set(after)
    assert paths_at(catalog, 1) == before  # the old revision still has them all
    # deleting a file takes just that file, not its byte-wise neighbours
    assert catalog.commit("alpha", [delete("di")], author=ADMIN).revision.deleted == 1
    assert paths_at(catalog) == [p for p in after if p != "di"]
    # deleting the directory at the range's end takes it and what is below it
    assert catalog.commit("alpha", [delete("dir0")], author=ADMIN).revision.deleted == 2
    assert paths_at(catalog) == [p for p in after if p not in ("di", "dir0", "dir0/d")]


def test_delete_of_a_missing_path_is_a_no_op(catalog: SqlCatalog, db_url: str) -> None:
    new_repo(catalog)
    commit(catalog, put(file("d/x", 1)))
    rows = count_rows(db_url, "entries")
    for missing in ("nothing", "d/nothing", "d/x/below-a-file", "d/x-y", "d/w"):
        result = catalog.commit("alpha", [delete(missing)], author=ADMIN)
        assert (result.created, result.revision.number) == (False, 1)
    assert count_rows(db_url, "entries") == rows
    # deleting twice: the second is a no-op
    assert commit(catalog, delete("d/x")) == 2
    result = catalog.commit("alpha", [delete("d/x")], author=ADMIN)
    assert (result.created, result.revision.number) == (False, 2)


def test_file_replaced_by_directory_and_back(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    commit(catalog, put(file("p", 1)), put(file("q/inner", 2)))
    # file -> directory: a put below a file turns the file into a directory
    r2 = catalog.commit("alpha", [put(file("p/child", 3))], author=ADMIN).revision
    node = catalog.lookup("alpha", "p")
    assert node is not None
    assert node.kind is Kind.DIR
    assert (r2.files, r2.added, r2.modified, r2.deleted) == (2, 1, 1, 0)
    # directory -> file: the whole subtree goes
    r3 = catalog.commit("alpha", [put(file("q", 4))], author=ADMIN).revision
    assert catalog.lookup("alpha", "q") == file("q", 4)
    assert catalog.lookup("alpha", "q/inner") is None
    assert (r3.files, r3.added, r3.deleted) == (2, 1, 2)
    assert paths_at(catalog) == ["p", "p/child", "q"]
    # file -> directory by an explicit put of the directory
    commit(catalog, put(directory("q")))
    assert catalog.lookup("alpha", "q") == directory("q")
    assert catalog.get_revision("alpha").files == 1
    # history tells the story
    assert [(v.entry.kind, v.rev_from, v.rev_to) for v in catalog.history("alpha", "q")] == [
        (Kind.DIR, 1, 3), (Kind.FILE, 3, 4), (Kind.DIR, 4, None)]
    assert catalog.lookup("alpha", "q/inner", 2) == file("q/inner", 2)
    assert catalog.lookup("alpha", "p", 1) == file("p", 1)


def test_symlinks(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    commit(catalog, put(file("a/target", 1)), put(link("a/l", "target")),
           put(link("up", "a/target")))
    got = catalog.lookup("alpha", "a/l")
    assert got == link("a/l", "target")
    assert got is not None
    assert (got.kind, got.target, got.sha256, got.size) == (Kind.SYMLINK, "target", None, 0)
    rev = catalog.get_revision("alpha")
    assert (rev.files, rev.bytes) == (1, size(1))
    assert [e.kind for e in catalog.list_dir("alpha", "a")] == [Kind.SYMLINK, Kind.FILE]
    # retarget, then replace by a file
    commit(catalog, put(link("a/l", "../up")))
    assert catalog.lookup("alpha", "a/l") == link("a/l", "../up")
    assert catalog.lookup("alpha", "a/l", 1) == link("a/l", "target")
    commit(catalog, put(file("a/l", 2)))
    assert catalog.lookup("alpha", "a/l") == file("a/l", 2)
    assert catalog.get_revision("alpha").files == 2


# --- reading the versioned tree --------------------------------------------------------


def test_time_travel(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    commit(catalog, put(file("a/x", 1)), put(file("a/y", 2)), put(file("b", 3)))
    commit(catalog, put(file("a/x", 4)), delete("b"), put(file("c/z", 5)))
    commit(catalog, delete("a"))

    assert catalog.lookup("alpha", "a/x", 1) == file("a/x", 1)
    assert catalog.lookup("alpha", "a/x", 2) == file("a/x", 4)
    assert catalog.lookup("alpha", "a/x", 3) is None
    assert catalog.lookup("alpha", "a/x") is None
    assert catalog.lookup("alpha", "b", 1) == file("b", 3)
    assert catalog.lookup("alpha", "b", 2) is None

    assert [e.path for e in catalog.list_dir("alpha", "", 1)] == ["a", "b"]
    assert [e.path for e in catalog.list_dir("alpha", "", 2)] == ["a", "c"]
    assert [e.path for e in catalog.list_dir("alpha", "")] == ["c"]
    assert catalog.list_dir("alpha", "a", 1) == [file("a/x", 1), file("a/y", 2)]
    assert catalog.list_dir("alpha", "a", 2) == [file("a/x", 4), file("a/y", 2)]
    assert catalog.list_dir("alpha", "a", 3) == []

    assert paths_at(catalog, 1) == ["a", "a/x", "a/y", "b"]
    assert paths_at(catalog, 2) == ["a", "a/x", "a/y", "c", "c/z"]
    assert paths_at(catalog, 3) == ["c", "c/z"]
    assert paths_at(catalog, 0) == []
    assert [e.path for e in catalog.iter_tree("alpha", 2, prefix="a")] == ["a/x", "a/y"]
    assert catalog.resolve_rev("alpha", None)[1] == 3
    assert catalog.resolve_rev("alpha", 2)[1] == 2
    for bad in (0, 4, -1):
        with pytest.raises(NotFound):
            catalog.lookup("alpha", "a/x", bad)


def test_reads_of_an_empty_repo(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    assert catalog.lookup("alpha", "x") is None
    assert catalog.list_dir("alpha", "") == []
    assert paths_at(catalog) == []
    assert catalog.tree_page("alpha") == (0, [])
    assert catalog.list_revisions("alpha") == []
    assert catalog.history("alpha", "x") == []
    with pytest.raises(NotFound):
        catalog.get_revision("alpha")


def test_tree_page_paging(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    names = [f"d/f{i:02d}" for i in range(23)]
    commit(catalog, *(put(file(n, i % 10)) for i, n in enumerate(names)), put(file("e", 1)))
    commit(catalog, delete("d/f05"), put(file("d/f99", 2)))

    rev, first = catalog.tree_page("alpha", prefix="d", limit=10)
    assert rev == 2
    got = [e.path for e in first]
    while True:
        _, page = catalog.tree_page("alpha", 2, prefix="d", after=got[-1], limit=10)
        got += [e.path for e in page]
        if len(page) < 10:
            break
    want = [n for n in names if n != "d/f05"] + ["d/f99"]
    assert got == want
    # the old revision pages the old tree; the whole tree includes the directory itself
    _, old = catalog.tree_page("alpha", 1, limit=100)
    assert [e.path for e in old] == ["d", *names, "e"]
    assert [e.path for e in catalog.iter_tree("alpha", 1, batch=4)] == ["d", *names, "e"]
    assert [e.path for e in catalog.iter_tree("alpha", prefix="d", batch=3)] == want
    _, tail = catalog.tree_page("alpha", after="d/f98", limit=100)
    assert [e.path for e in tail] == ["d/f99", "e"]


def test_paths_are_in_byte_order(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    names = ["z", "é", "a0", "a/b", "a.b", "a-b", "B", "a/B", "a/é", "a/~"]
    commit(catalog, *(put(file(n, 1)) for n in names))
    ordered = sorted(n.encode() for n in [*names, "a"])  # "a": made for "a/b"
    assert paths_at(catalog) == [n.decode() for n in ordered]
    assert [e.path for e in catalog.list_dir("alpha", "a")] == ["a/B", "a/b", "a/~", "a/é"]
    _, page = catalog.tree_page("alpha", after="a.b", limit=3)
    assert [e.path for e in page] == ["a/B", "a/b", "a/~"]


def test_history_of_a_path(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    commit(catalog, put(file("x", 1)))                # 1
    commit(catalog, put(file("other", 2)))            # 2
    commit(catalog, put(file("x", 3)))                # 3
    commit(catalog, delete("x"))                      # 4
    commit(catalog, put(link("x", "other")))          # 5
    versions = catalog.history("alpha", "x")
    assert [(v.entry, v.rev_from, v.rev_to) for v in versions] == [
        (file("x", 1), 1, 3), (file("x", 3), 3, 4), (link("x", "other"), 5, None)]
    assert versions[0].to_json()["rev_to"] == 3
    assert catalog.history("alpha", "never") == []


def test_diff(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    commit(catalog, put(file("a/x", 1)), put(file("a/y", 2)), put(file("b", 3)))      # 1
    commit(catalog, put(file("a/x", 4)), delete("b"), put(file("c/z", 5)))          # 2
    commit(catalog, put(file("a/y", 6)), put(link("l", "a/x")))                     # 3

    forward = catalog.diff("alpha", 1, 3)
    assert [(d.path, d.status) for d in forward] == [
        ("a/x", "modified"), ("a/y", "modified"), ("b", "deleted"), ("c", "added"),
        ("c/z", "added"), ("l", "added")]
    by_path = {d.path: d for d in forward}
    assert (by_path["a/x"].old, by_path["a/x"].new) == (file("a/x", 1), file("a/x", 4))
    assert (by_path["b"].old, by_path["b"].new) == (file("b", 3), None)

    backward = catalog.diff("alpha", 3, 1)
    assert [(d.path, d.status) for d in backward] == [
        ("a/x", "modified"), ("a/y", "modified"), ("b", "added"), ("c", "deleted"),
        ("c/z", "deleted"), ("l", "deleted")]
    assert {d.path: (d.old, d.new) for d in backward} == {
        d.path: (d.new, d.old) for d in forward}

    assert [(d.path, d.status) for d in catalog.diff("alpha", 1, 3, prefix="a")] == [
        ("a/x", "modified"), ("a/y", "modified")]
    assert [d.path for d in catalog.diff("alpha", 2, 3)] == ["a/y", "l"]
    assert catalog.diff("alpha", 2, 2) == []
    assert [d.status for d in catalog.diff("alpha", 0, 1)] == ["added"] * 4
    assert [d.status for d in catalog.diff("alpha", 1, 0)] == ["deleted"] * 4
    with pytest.raises(NotFound):
        catalog.diff("alpha", 1, 4)


def test_diff_ignores_changes_that_cancel_out(catalog: SqlCatalog) -> None:
    new_repo(catalog)
    commit(catalog, put(file("same", 1)), put(file("keep", 2)))    # 1
    commit(catalog, put(file("same", 3)), put(file("temp", 4)))    # 2: A -> B, temp added
    commit(catalog, put(file("same", 1)), delete("temp"))          # 3: B -> A, temp gone
    commit(catalog, delete("keep"))                                # 4
    commit(catalog, put(file("keep", 2)))                          # 5: back as it was
    assert catalog.diff("alpha", 1, 3) == []
    assert catalog.diff("alpha", 3, 1) == []
    assert catalog.diff("alpha", 3, 5) == []
    assert catalog.diff("alpha", 1, 5) == []
    assert [d.path for d in catalog.diff("alpha", 1, 2)] == ["same", "temp"]
    assert [(d.path, d.status) for d in catalog.diff("alpha", 2, 4)] == [
        ("keep", "deleted"), ("same", "modified"), ("temp", "deleted")]


# --- retention and garbage ----------------------------------------------------------


def test_retention_keep_last(catalog: SqlCatalog, db_url: str) -> None:
    new_repo(catalog)
    commit(catalog, put(file("stable", 1)), put(file("x", 2)), put(file("gone", 3)))  # 1
    commit(catalog, put(file("x", 4)))                                               # 2
    commit(catalog, delete("gone"), put(file("x", 5)))                               # 3
    commit(catalog, put(file("x", 6)))                                               # 4
    commit(catalog, put(file("new", 7)))                                             # 5
    head_tree = list(catalog.iter_tree("alpha"))
    tree_at_4 = list(catalog.iter_tree("alpha", 4))
    assert catalog.apply_retention("alpha", actor=ADMIN) == 0  # no policy: keep all

    catalog.update_repo("alpha", actor=ADMIN, keep_last=2)
    # revisions 4 and 5 are kept; revision 4 needs rows with rev_to > 4 or live:
    # dropped are x@1 (rev_to 2), x@2 (rev_to 3), gone (rev_to 3), x@3 (rev_to 4)
    assert catalog.apply_retention("alpha", actor=ADMIN) == 4
    assert catalog.get_repo("alpha").oldest_kept == 4
    assert count_rows(db_url, "entries") == 3  # stable, x@4, new
    assert sorted(v.rev_from for v in catalog.history("alpha", "x")) == [4]

    for pruned in (1, 2, 3):
        with pytest.raises(NotFound, match="retention"):
            catalog.resolve_rev("alpha", pruned)
        with pytest.raises(NotFound, match="retention"):
            catalog.lookup("alpha", "stable", pruned)
        with pytest.raises(NotFound, match="retention"):
            catalog.get_revision("alpha", pruned)
    with pytest.raises(NotFound):
        catalog.diff("alpha", 3, 5)
    assert list(catalog.iter_tree("alpha")) == head_tree
    assert list(catalog.iter_tree("alpha", 4)) == tree_at_4
    assert catalog.lookup("alpha", "stable", 4) == file("stable", 1)
    assert [d.path for d in catalog.diff("alpha", 4, 5)] == ["new"]
    assert [r.number for r in catalog.list_revisions("alpha")] == [5, 4]
    # applying the same policy again changes nothing; committing goes on as usual
    assert catalog.apply_retention("alpha", actor=ADMIN) == 0
    assert commit(catalog, put(file("x", 8))) == 6
    assert catalog.lookup("alpha", "x", 4) == file("x", 6)


def test_retention_keep_days(catalog: SqlCatalog, clock: FakeClock) -> None:
    new_repo(catalog)
    for n in range(1, 5):  # revision n made at START + (n - 1) days
        commit(catalog, put(file("x", n)))
        clock.advance(DAY)
    clock.now -= DAY  # now: the time of revision 4
    catalog.update_repo("alpha", actor=ADMIN, keep_days=1.5)
    assert catalog.apply_retention("alpha", actor=ADMIN) == 2  # keeps 3 (1 day old) and 4
    assert catalog.get_repo("alpha").oldest_kept == 3
    assert catalog.lookup("alpha", "x", 3) == file("x", 3)
    # keep_last and keep_days together: a revision either keeps is kept
    catalog.update_repo("alpha", actor=ADMIN, keep_last=2)
    clock.advance(10 * DAY)
    assert catalog.apply_retention("alpha", actor=ADMIN) == 0
    assert catalog.get_repo("alpha").oldest_kept == 3
    # everything is old: the head is always kept
    catalog.update_repo("alpha", actor=ADMIN, keep_last=None)
    assert catalog.apply_retention("alpha", actor=ADMIN) == 1
    assert catalog.get_repo("alpha").oldest_kept == 4
    assert catalog.lookup("alpha", "x") == file("x", 4)
    with pytest.raises(NotFound, match="retention"):
        catalog.lookup("alpha", "x", 3)


def test_unreferenced_blobs_and_forget_blobs(catalog: SqlCatalog, clock: FakeClock) -> None:
    new_repo(catalog, "alpha", 1, 2, 3, 4)
    catalog.create_repo("beta", public=False, actor=ADMIN)
    commit(catalog, put(file("x", 1)), put(file("y", 2)), put(file("shared", 4)))   # 1
    commit(catalog, put(file("x", 3)))                                              # 2
    commit(catalog, put(file("shared", 4)), repo="beta")
    clock.advance(60)
    catalog.add_blob(sha(6), size(6), [ChunkRef(blake3_hex(b"six"), 0, size(6))])
    clock.advance(60)
    add_blobs(catalog, 5, 7)  # unreferenced too, but inside the grace time
    young = clock.now - 30

    # blob 1 is no longer live but revision 1 still uses it
    assert catalog.unreferenced_blobs(created_before=young) == [(sha(6), size(6))]
    assert sorted(catalog.unreferenced_blobs(created_before=clock.now + 1)) == sorted(
        [(sha(6), size(6)), (sha(7), size(7)), (sha(5), size(5))])

    catalog.update_repo("alpha", actor=ADMIN, keep_last=1)
    catalog.apply_retention("alpha", actor=ADMIN)
    unused = sorted(s for s, _ in catalog.unreferenced_blobs(created_before=young))
    assert unused == sorted([sha(1), sha(6)])

    # forget_blobs re-checks: a blob named by a live entry is never forgotten
    gone = catalog.forget_blobs([sha(1), sha(2), sha(3), sha(4), sha(6)])
    assert sorted(gone) == sorted([sha(1), sha(6)])
    assert catalog.known_blobs([sha(n) for n in range(1, 8)]) == {
        sha(2), sha(3), sha(4), sha(5), sha(7)}
    assert catalog.locate_chunks([blake3_hex(b"six")]) == {}
    assert catalog.forget_blobs([sha(1)]) == []

    # shared by two repositories: garbage only when no kept revision of either names it
    def garbage() -> set[str]:
        return {s for s, _ in catalog.unreferenced_blobs(created_before=young)}

    commit(catalog, delete("shared"))  # alpha 3; alpha 2 (kept) still has it
    assert sha(4) not in garbage()
    assert catalog.forget_blobs([sha(4)]) == []
    catalog.delete_repo("beta", actor=ADMIN)
    assert sha(4) not in garbage()
    assert catalog.apply_retention("alpha", actor=ADMIN) == 1  # the row of "shared"
    assert sha(4) in garbage()
    assert catalog.forget_blobs([sha(4)]) == [sha(4)]
    # a commit naming a forgotten blob is refused
    with pytest.raises(MissingData):
        catalog.commit("alpha", [put(file("again", 1))], author=ADMIN)


def test_add_blob_is_idempotent_and_chunks_are_found(
    catalog: SqlCatalog, clock: FakeClock, db_url: str
) -> None:
    c1, c2, c3 = (blake3_hex(bytes([i])) for i in range(3))
    blob = sha256_hex(b"first")
    catalog.add_blob(blob, 30, [ChunkRef(c1, 0, 10), ChunkRef(c2, 10, 10),
                                ChunkRef(c1, 20, 10)])
    created = clock.now
    clock.advance(5)
    catalog.add_blob(blob, 30, [ChunkRef(c1, 0, 10), ChunkRef(c2, 10, 10)])
    assert count_rows(db_url, "blobs") == 1
    assert count_rows(db_url, "chunks") == 2
    assert catalog.blob_size(blob) == 30
    assert catalog.blob_size(sha256_hex(b"other")) is None
    assert catalog.known_blobs([blob, sha256_hex(b"other")]) == {blob}
    # the grace time counts from the first add
    assert catalog.unreferenced_blobs(created_before=created + 1) == [(blob, 30)]

    found = catalog.locate_chunks([c1, c2, c3])
    assert set(found) == {c1, c2}
    assert (found[c1].sha256, found[c1].offset, found[c1].length) == (blob, 0, 10)
    assert (found[c2].sha256, found[c2].offset, found[c2].length) == (blob, 10, 10)

    # a chunk already known keeps its first location
    second = sha256_hex(b"second")
    catalog.add_blob(second, 15, [ChunkRef(c2, 0, 10), ChunkRef(c3, 10, 5)])
    found = catalog.locate_chunks([c1, c2, c3])
    assert found[c2].sha256 == blob
    assert (found[c3].sha256, found[c3].offset, found[c3].length) == (second, 10, 5)
    many = [blake3_hex(str(i).encode()) for i in range(1200)]  # more than one batch
    assert catalog.locate_chunks([*many, c3]).keys() == {c3}


# --- users, tokens, grants ---------------------------------------------------------------


def test_users(catalog: SqlCatalog, clock: FakeClock) -> None:
    bob = catalog.create_user("bob", is_admin=False, actor=ADMIN)
    root = catalog.create_user("root@example", is_admin=True, actor=ADMIN)
    assert (bob.name, bob.is_admin, bob.created_at) == ("bob", False, clock.now)
    assert catalog.get_user("bob") == bob
    assert catalog.get_user("root@example") == root
    assert [u.name for u in catalog.list_users()] == ["bob", "root@example"]
    with pytest.raises(Conflict):
        catalog.create_user("bob", is_admin=True, actor=ADMIN)
    for bad in ("", "has space", "-x", "a/b"):
        with pytest.raises(UsageError):
            catalog.create_user(bad, is_admin=False, actor=ADMIN)
    catalog.delete_user("bob", actor=ADMIN)
    with pytest.raises(NotFound):
        catalog.get_user("bob")
    with pytest.raises(NotFound):
        catalog.delete_user("bob", actor=ADMIN)
    assert [u.name for u in catalog.list_users()] == ["root@example"]


def test_tokens(catalog: SqlCatalog, clock: FakeClock) -> None:
    bob = catalog.create_user("bob", is_admin=False, actor=ADMIN)
    carol = catalog.create_user("carol", is_admin=True, actor=ADMIN)
    start = clock.now
    t1 = catalog.create_token("bob", name="laptop", token_hash="h1", expires_at=start + 3600,
                              actor=ADMIN)
    t2 = catalog.create_token("bob", name="ci", token_hash="h2", expires_at=None, actor="bob")
    t3 = catalog.create_token("carol", name="x", token_hash="h3", expires_at=None,
                              actor=ADMIN)
    assert (t1.user, t1.name, t1.created_at, t1.expires_at, t1.revoked_at) == (
        "bob", "laptop", start, start + 3600, None)
    with pytest.raises(Conflict):
        catalog.create_token("carol", name="dup", token_hash="h1", expires_at=None,
                             actor=ADMIN)
    with pytest.raises(NotFound):
        catalog.create_token("nobody", name="n", token_hash="h9", expires_at=None,
                             actor=ADMIN)

    assert catalog.find_token("h1") == (t1, bob)
    assert catalog.find_token("h3") == (t3, carol)
    assert catalog.find_token("nope") is None
    assert [t.id for t in catalog.list_tokens("bob")] == [t1.id, t2.id]
    assert [t.id for t in catalog.list_tokens()] == [t1.id, t2.id, t3.id]

    # expiry is a field the caller checks against its clock
    assert t1.active(clock.now)
    clock.advance(3600)
    found = catalog.find_token("h1")
    assert found is not None
    assert not found[0].active(clock.now)

    # use is recorded at most once a minute
    catalog.touch_token(t2.id)
    used = clock.now
    clock.advance(30)
    catalog.touch_token(t2.id)
    assert catalog.list_tokens("bob")[1].last_used_at == used
    clock.advance(31)
    catalog.touch_token(t2.id)
    assert catalog.list_tokens("bob")[1].last_used_at == clock.now

    # revoke: once, with the time it happened
    revoked_at = clock.now
    gone = catalog.revoke_token(t2.id, actor=ADMIN)
    assert (gone.id, gone.revoked_at) == (t2.id, revoked_at)
    clock.advance(10)
    assert catalog.revoke_token(t2.id, actor=ADMIN).revoked_at == revoked_at
    found = catalog.find_token("h2")
    assert found is not None
    assert found[0].revoked_at == revoked_at
    assert not found[0].active(clock.now)
    with pytest.raises(NotFound):
        catalog.revoke_token(9999, actor=ADMIN)

    # a removed user's tokens go with them
    catalog.delete_user("bob", actor=ADMIN)
    assert catalog.find_token("h1") is None
    assert [t.id for t in catalog.list_tokens()] == [t3.id]


def test_grants(catalog: SqlCatalog) -> None:
    bob = catalog.create_user("bob", is_admin=False, actor=ADMIN)
    carol = catalog.create_user("carol", is_admin=False, actor=ADMIN)
    for name in ("alpha", "beta"):
        catalog.create_repo(name, public=False, actor=ADMIN)
    catalog.set_grant("bob", "alpha", Role.READ, actor=ADMIN)
    catalog.set_grant("bob", "beta", Role.ADMIN, actor=ADMIN)
    catalog.set_grant("carol", "alpha", Role.WRITE, actor=ADMIN)
    assert catalog.role_of(bob.id, "alpha") is Role.READ
    assert catalog.role_of(bob.id, "beta") is Role.ADMIN
    assert catalog.role_of(carol.id, "beta") is None
    assert catalog.role_of(bob.id, "nope") is None
    # setting again replaces
    catalog.set_grant("bob", "alpha", Role.WRITE, actor=ADMIN)
    assert catalog.role_of(bob.id, "alpha") is Role.WRITE
    assert [(g.user, g.repo, g.role) for g in catalog.list_grants()] == [
        ("bob", "alpha", Role.WRITE), ("carol", "alpha", Role.WRITE),
        ("bob", "beta", Role.ADMIN)]
    assert [g.repo for g in catalog.list_grants(user="bob")] == ["alpha", "beta"]
    assert [g.user for g in catalog.list_grants(repo="alpha")] == ["bob", "carol"]
    assert catalog.list_grants(user="bob", repo="beta")[0].role is Role.ADMIN
    # None removes
    catalog.set_grant("bob", "alpha", None, actor=ADMIN)
    assert catalog.role_of(bob.id, "alpha") is None
    with pytest.raises(NotFound):
        catalog.set_grant("nobody", "alpha", Role.READ, actor=ADMIN)
    with pytest.raises(NotFound):
        catalog.set_grant("bob", "nope", Role.READ, actor=ADMIN)
    catalog.delete_user("carol", actor=ADMIN)
    assert catalog.list_grants(repo="alpha") == []


# --- audit ------------------------------------------------------------------------------


def audited_history(cat: SqlCatalog, clock: FakeClock) -> list[str]:
    """Run one of every mutation (and some failing or no-op ones); return the actions
    the audit log must hold, in order."""
    cat.create_user("alice", is_admin=False, actor=ADMIN)
    cat.create_repo("alpha", public=False, actor=ADMIN)
    add_blobs(cat, 1, 2)  # blobs are the store's business: not audited
    cat.update_repo("alpha", actor=ADMIN, description="d")
    cat.update_repo("alpha", actor=ADMIN)  # nothing to change
    cat.set_grant("alice", "alpha", Role.WRITE, actor=ADMIN)
    token = cat.create_token("alice", name="t", token_hash="h", expires_at=None, actor=ADMIN)
    clock.advance(1)
    cat.commit("alpha", [put(file("x", 1))], author="alice", commit_id="c1", message="m")
    cat.commit("alpha", [put(file("x", 1))], author="alice", commit_id="c1")  # retry
    cat.commit("alpha", [put(file("x", 1))], author="alice")  # no change
    with pytest.raises(MissingData):
        cat.commit("alpha", [put(file("y", 9))], author="alice")
    with pytest.raises(Conflict):
        cat.create_repo("alpha", public=False, actor=ADMIN)
    cat.commit("alpha", [put(file("x", 2))], author="alice")
    cat.revoke_token(token.id, actor=ADMIN)
    cat.revoke_token(token.id, actor=ADMIN)  # already revoked
    cat.set_grant("alice", "alpha", None, actor=ADMIN)
    cat.update_repo("alpha", actor=ADMIN, keep_last=1)
    cat.apply_retention("alpha", actor=ADMIN)
    cat.apply_retention("alpha", actor=ADMIN)  # nothing more to drop
    cat.record_event("gc-bot", "gc", "site", blobs=0)
    cat.delete_user("alice", actor=ADMIN)
    cat.delete_repo("alpha", actor=ADMIN)
    return ["user.add", "repo.create", "repo.update", "grant.set", "token.create", "commit",
            "commit", "token.revoke", "grant.remove", "repo.update", "retention.apply", "gc",
            "user.remove", "repo.delete"]


def test_every_mutation_is_audited(catalog: SqlCatalog, clock: FakeClock) -> None:
    assert catalog.verify_audit() == (0, [])
    want = audited_history(catalog, clock)
    records = catalog.audit_entries(limit=1000)
    assert [r.action for r in records] == want
    assert [r.seq for r in records] == list(range(1, len(want) + 1))
    commits = [r for r in records if r.action == "commit"]
    assert [(r.actor, r.target) for r in commits] == [("alice", "alpha@1"), ("alice", "alpha@2")]
    assert commits[0].details == {"message": "m", "added": 1, "modified": 0, "deleted": 0}
    assert records[0].details == {"is_admin": False}
    retention = next(r for r in records if r.action == "retention.apply")
    assert retention.details == {"oldest_kept": 2, "entries_dropped": 1}
    assert records[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert catalog.verify_audit() == (len(want), [])


def test_audit_filters(catalog: SqlCatalog, clock: FakeClock) -> None:
    want = audited_history(catalog, clock)
    assert [r.action for r in catalog.audit_entries(actor="alice")] == ["commit", "commit"]
    assert [r.action for r in catalog.audit_entries(action="repo.*")] == [
        "repo.create", "repo.update", "repo.update", "repo.delete"]
    assert [r.action for r in catalog.audit_entries(action="grant.set")] == ["grant.set"]
    assert [r.target for r in catalog.audit_entries(target="alpha@*")] == [
        "alpha@1", "alpha@2"]
    assert [r.target for r in catalog.audit_entries(target="alice@alpha")] == [
        "alice@alpha", "alice@alpha"]
    # everything after the clock moved: from the first commit on
    since = catalog.audit_entries(since=clock.now)
    assert [r.action for r in since] == want[5:]
    assert catalog.audit_entries(since=clock.now + 1) == []
    # limit keeps the newest, in log order; after_seq pages forward
    assert [r.seq for r in catalog.audit_entries(limit=3)] == [12, 13, 14]
    assert [r.seq for r in catalog.audit_entries(after_seq=10)] == [11, 12, 13, 14]
    assert [r.seq for r in catalog.audit_entries(after_seq=3, limit=2)] == [13, 14]
    assert catalog.audit_entries(actor="nobody") == []


TAMPERING = {
    "changed details": (
        "UPDATE audit SET details = '{\"is_admin\": true}' WHERE seq = 1",
        ["entry 1: content was changed after it was written"],
    ),
    "changed actor": (
        "UPDATE audit SET actor = 'mallory' WHERE seq = 6",
        ["entry 6: content was changed after it was written"],
    ),
    "middle row deleted": (
        "DELETE FROM audit WHERE seq = 5",
        ["entry 5 is missing (next is 6)", "entry 6: does not link to the entry before it"],
    ),
    "newest row deleted": (
        "DELETE FROM audit WHERE seq = 14",
        ["the newest entries were removed: the head says entry 14 but the log ends at 13"],
    ),
    "every row deleted": (
        "DELETE FROM audit",
        ["the newest entries were removed: the head says entry 14 but the log ends at 0"],
    ),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_verify_audit_detects_tampering(
    catalog: SqlCatalog, clock: FakeClock, db_url: str, tampering: str
) -> None:
    assert len(audited_history(catalog, clock)) == 14
    assert catalog.verify_audit() == (14, [])
    statement, problems = TAMPERING[tampering]
    with raw(db_url) as conn:
        assert conn.exec_driver_sql(statement).rowcount >= 1
    checked, found = catalog.verify_audit()
    assert found == problems
    assert checked == count_rows(db_url, "audit")


# --- agents ---------------------------------------------------------------------------


def report(agent_id: str = "agent-1", **changes: Any) -> AgentReport:
    values: dict[str, Any] = dict(
        agent_id=agent_id, repo="alpha", host="src1.example", directory="/srv/www",
        version="0.1.0", queue_length=0, last_revision=None,
        current_site="http://a.example:8080", last_error=None,
    )
    values.update(changes)
    return AgentReport(**values)


def test_heartbeat_inserts_then_replaces_keeping_first_seen(
    catalog: SqlCatalog, clock: FakeClock
) -> None:
    first = catalog.record_heartbeat(report(), user="alice", address="10.0.0.5")
    assert (first.first_seen, first.last_seen) == (clock.now, clock.now)
    assert (first.user, first.address) == ("alice", "10.0.0.5")
    started = clock.now
    clock.advance(30)
    again = catalog.record_heartbeat(
        report(queue_length=12, last_revision=7, last_error="site down",
               current_site="http://b.example:8080"),
        user="alice", address="10.0.0.6",
    )
    assert again.first_seen == started and again.last_seen == started + 30
    assert again.report.queue_length == 12 and again.report.last_revision == 7
    assert again.report.last_error == "site down"
    assert again.address == "10.0.0.6"
    assert catalog.list_agents() == [again]
    body = again.to_json(now=started + 40)
    assert body["seconds_since_seen"] == 10
    assert body["agent_id"] == "agent-1" and body["current_site"] == "http://b.example:8080"


def test_heartbeats_are_not_audited_but_forgetting_is(catalog: SqlCatalog) -> None:
    before = len(catalog.audit_entries(limit=10_000))
    for n in range(3):
        catalog.record_heartbeat(report(queue_length=n), user="alice", address="")
    assert len(catalog.audit_entries(limit=10_000)) == before
    catalog.forget_agent("agent-1", actor=ADMIN)
    assert catalog.list_agents() == []
    forgotten = catalog.audit_entries(action="agent.forget")
    assert [(r.actor, r.target) for r in forgotten] == [(ADMIN, "agent-1")]
    with pytest.raises(NotFound):
        catalog.forget_agent("agent-1", actor=ADMIN)
    assert catalog.verify_audit()[1] == []


def test_list_agents_orders_and_filters(catalog: SqlCatalog) -> None:
    catalog.record_heartbeat(report("c", repo="beta", host="h1"), user="u", address="")
    catalog.record_heartbeat(report("b", host="h2"), user="u", address="")
    catalog.record_heartbeat(report("a", host="h1", directory="/z"), user="u", address="")
    catalog.record_heartbeat(report("d", host="h1", directory="/a"), user="u", address="")
    assert [r.report.agent_id for r in catalog.list_agents()] == ["d", "a", "b", "c"]
    assert [r.report.agent_id for r in catalog.list_agents(repo="beta")] == ["c"]
    assert catalog.list_agents(repo="gamma") == []


def test_heartbeat_rejects_bad_values(catalog: SqlCatalog) -> None:
    for bad in ("", "-x", "a b", "x" * 65, "a/b"):
        with pytest.raises(UsageError):
            catalog.record_heartbeat(report(bad), user="u", address="")
    with pytest.raises(UsageError):
        catalog.record_heartbeat(report(queue_length=-1), user="u", address="")
    long_error = "e" * 5000
    stored = catalog.record_heartbeat(report(last_error=long_error), user="u", address="")
    assert stored.report.last_error == "e" * 2000
    assert catalog.list_agents() == [stored]
