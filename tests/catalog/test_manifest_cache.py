"""The signer's manifest digests followed by diffs equal a walk of the whole tree, on
SQLite and PostgreSQL, whatever the revisions did: a directory deleted and made again
(only its mtime differs), a mode change, a symlink moved, a file replaced by a
directory, a repository made again under its name, kept revisions pruned."""

from __future__ import annotations

from tain.catalog.sql import SqlCatalog
from tain.core.manifest import Change, Entry, Kind
from tain.core.statements import ManifestLines, manifest_digest
from tain.service.heads import ManifestCache
from tests.catalog.changes import dir_put, file_put
from tests.catalog.conftest import FakeClock


def _walked(catalog: SqlCatalog, repo: str) -> str:
    return manifest_digest(catalog.iter_tree(repo, catalog.get_repo(repo).head))


def _check(cache: ManifestCache, catalog: SqlCatalog, repo: str = "r") -> None:
    row = catalog.get_repo(repo)
    assert cache.digest(row, row.head) == _walked(catalog, repo)


def test_followed_digests_equal_a_walk(catalog: SqlCatalog) -> None:
    catalog.create_repo("r", public=True, actor="t")
    cache = ManifestCache(catalog)
    steps: list[list[Change]] = [
        [dir_put("d", 1), file_put(catalog, "d/a", b"a"), file_put(catalog, "b", b"b")],
        [Change("delete", "d")],
        [dir_put("d", 2), file_put(catalog, "d/a", b"a")],  # the same content, a new mtime
        [file_put(catalog, "b", b"b", mode=0o600)],
        [Change("put", "l", Entry("l", Kind.SYMLINK, 0o777, 5, target="b"))],
        [Change("put", "l", Entry("l", Kind.SYMLINK, 0o777, 5, target="d/a"))],
        [Change("delete", "b"), dir_put("b", 3), file_put(catalog, "b/ü \"x\"", b"x")],
    ]
    for changes in steps:
        catalog.commit("r", changes, author="t")
        _check(cache, catalog)
    catalog.commit("r", [Change("delete", "d")], author="t")
    catalog.commit("r", [dir_put("d", 4), file_put(catalog, "later", b"2")], author="t")
    _check(cache, catalog)  # two revisions since the last digest: d differs only by mtime


def test_a_repository_made_again_or_pruned_is_walked(
    catalog: SqlCatalog, clock: FakeClock
) -> None:
    catalog.create_repo("r", public=True, actor="t")
    cache = ManifestCache(catalog)
    for i in range(3):
        catalog.commit("r", [file_put(catalog, f"f{i}", b"%d" % i)], author="t")
        _check(cache, catalog)
    catalog.delete_repo("r", actor="t")
    clock.advance(1)  # a repository is told from an earlier one of its name by its id and
    catalog.create_repo("r", public=True, actor="t")  # creation time (SQLite reuses ids)
    for i in range(4):
        catalog.commit("r", [file_put(catalog, f"g{i}", b"g%d" % i)], author="t")
    _check(cache, catalog)  # revision 4 of another r: the kept lines of 3 are not used
    catalog.update_repo("r", actor="t", keep_last=1)
    catalog.commit("r", [file_put(catalog, "h", b"h")], author="t")
    catalog.apply_retention("r", actor="t")
    catalog.commit("r", [file_put(catalog, "i", b"i")], author="t")
    _check(cache, catalog)


def test_the_cache_keeps_at_most_its_limit(catalog: SqlCatalog) -> None:
    for name in ("a", "b"):
        catalog.create_repo(name, public=True, actor="t")
        catalog.commit(name, [file_put(catalog, f"{name}{i}", b"%d" % i) for i in range(3)],
                       author="t")
    cache = ManifestCache(catalog, limit=4)
    for name in ("a", "b"):
        _check(cache, catalog, name)
    assert list(cache._kept) == ["b"]  # a and b together would be 6 lines


def test_manifest_lines_follow_changes_as_plain_values() -> None:
    entries = [Entry(f"p{i}", Kind.FILE, 0o644, i, "ab" * 32, i) for i in range(5)]
    lines = ManifestLines(entries)
    moved, first = Entry("p2", Kind.DIR, 0o755, 9), Entry("a", Kind.FILE, 0o600, 0, "cd" * 32)
    lines.apply([("p1", None), ("p2", moved), ("a", first)])
    now = [first, entries[0], moved, *entries[3:]]
    assert lines.digest() == manifest_digest(now) and len(lines) == 5
