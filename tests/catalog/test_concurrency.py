"""Concurrent writers: two threads on one catalog, and two catalogs (two engines, as two
server processes would have) on one database. Commits are serialised per repository,
numbered without gaps or repeats, lose nothing, and the audit chain never forks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from tain.catalog.sql import SqlCatalog, open_catalog
from tain.core.digests import sha256_hex
from tain.core.manifest import Change, Entry, Kind
from tests.catalog.conftest import FakeClock

COMMITS = 20  # per writer
WRITERS = 2
SHA = sha256_hex(b"concurrency")


def file(path: str, mtime_ns: int) -> Entry:
    return Entry(path, Kind.FILE, 0o644, mtime_ns, SHA, 1)


@pytest.fixture(params=["one catalog", "two catalogs"])
def writers(request: pytest.FixtureRequest, db_url: str) -> Iterator[list[SqlCatalog]]:
    """The catalog each writer uses: shared, or one each."""
    with ExitStack() as stack:
        first = open_catalog(db_url, clock=FakeClock())
        stack.callback(first.close)
        if request.param == "one catalog":
            yield [first] * WRITERS
            return
        others = []
        for _ in range(WRITERS - 1):
            cat = open_catalog(db_url, clock=FakeClock())
            stack.callback(cat.close)
            others.append(cat)
        yield [first, *others]


def run_writers(work: Callable[[int], None]) -> None:
    """Run ``work(writer)`` for each writer at once; re-raise the first failure."""
    start = threading.Barrier(WRITERS)

    def go(writer: int) -> None:
        start.wait(timeout=30)
        work(writer)

    with ThreadPoolExecutor(WRITERS) as pool:
        for future in [pool.submit(go, w) for w in range(WRITERS)]:
            future.result(timeout=120)


def test_concurrent_commits_to_one_repository(writers: list[SqlCatalog]) -> None:
    cat = writers[0]
    cat.create_repo("shared", public=False, actor="admin")
    cat.add_blob(SHA, 1, [])
    results: dict[int, list[int]] = {w: [] for w in range(WRITERS)}

    def work(writer: int) -> None:
        mine = writers[writer]
        for i in range(COMMITS):
            changes = [
                # a path of its own, and one both writers overwrite every time
                Change("put", f"w{writer}/f{i:02d}", file(f"w{writer}/f{i:02d}", i)),
                Change("put", "both", file("both", writer * 1000 + i)),
            ]
            result = mine.commit("shared", changes, author=f"writer{writer}",
                                 commit_id=f"w{writer}-{i}")
            assert result.created
            results[writer].append(result.revision.number)

    run_writers(work)

    total = WRITERS * COMMITS
    assert cat.get_repo("shared").head == total
    numbers = sorted(n for ns in results.values() for n in ns)
    assert numbers == list(range(1, total + 1))
    for ns in results.values():
        assert ns == sorted(ns)  # each writer sees its own commits in order
    assert [r.number for r in cat.list_revisions("shared", limit=100)] == list(
        range(total, 0, -1))

    # nothing lost: every file is there, "both" changed in every revision
    tree = {e.path: e for e in cat.iter_tree("shared")}
    for w in range(WRITERS):
        for i in range(COMMITS):
            assert f"w{w}/f{i:02d}" in tree
    assert len(tree) == WRITERS + WRITERS * COMMITS + 1
    head = cat.get_revision("shared")
    assert head.files == WRITERS * COMMITS + 1
    versions = cat.history("shared", "both")
    assert [(v.rev_from, v.rev_to) for v in versions] == [
        (n, n + 1 if n < total else None) for n in range(1, total + 1)]
    last_writer = next(w for w, ns in results.items() if total in ns)
    assert versions[-1].entry.mtime_ns == last_writer * 1000 + COMMITS - 1
    # per revision: exactly one new version of "both", on top of the one before
    for n in range(2, total + 1):
        assert [d.path for d in cat.diff("shared", n - 1, n) if d.path == "both"] == ["both"]

    # a retried commit id still answers with its revision
    again = cat.commit("shared", [], author="writer0", commit_id="w0-0")
    assert (again.created, again.revision.number) == (False, results[0][0])

    count, problems = cat.verify_audit()
    assert problems == []
    assert count == 1 + total
    assert [r.seq for r in cat.audit_entries(limit=1000)] == list(range(1, total + 2))


def test_concurrent_commits_to_two_repositories(writers: list[SqlCatalog]) -> None:
    """Different repositories do not wait for each other's head, but share the audit
    chain: it must stay one unbroken line."""
    cat = writers[0]
    for w in range(WRITERS):
        cat.create_repo(f"repo{w}", public=False, actor="admin")
    cat.add_blob(SHA, 1, [])

    def work(writer: int) -> None:
        mine = writers[writer]
        for i in range(COMMITS):
            path = f"f{i:02d}"
            result = mine.commit(f"repo{writer}", [Change("put", path, file(path, i))],
                                 author=f"writer{writer}")
            assert result.revision.number == i + 1

    run_writers(work)

    for w in range(WRITERS):
        assert cat.get_repo(f"repo{w}").head == COMMITS
        assert len(list(cat.iter_tree(f"repo{w}"))) == COMMITS
    count, problems = cat.verify_audit()
    assert problems == []
    assert count == WRITERS + WRITERS * COMMITS
