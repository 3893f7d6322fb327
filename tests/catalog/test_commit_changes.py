"""A commit says what it changed (``CommitResult.changes``): applied to the tree of the
revision before, with a deleted directory taking what was below it, they give exactly
the new revision's tree, on SQLite and PostgreSQL. The publisher relies on this instead
of asking the catalog for the diff of a revision it has just seen made."""

from __future__ import annotations

from tain.catalog.models import DiffItem
from tain.catalog.sql import SqlCatalog
from tain.core.manifest import Change, Entry, Kind
from tests.catalog.changes import dir_put, file_put


def _applied(tree: dict[str, Entry], changes: tuple[DiffItem, ...]) -> dict[str, Entry]:
    """``changes`` applied to ``tree`` the way the publisher applies them."""
    out = dict(tree)
    for item in changes:
        assert item.old == tree.get(item.path), item.path  # the entry it replaced
        if item.old is None:
            continue
        out.pop(item.path)
        keeps_children = item.old.kind is Kind.DIR and item.new is not None and \
            item.new.kind is Kind.DIR
        if item.old.kind is Kind.DIR and not keeps_children:
            out = {p: e for p, e in out.items() if not p.startswith(item.path + "/")}
    out.update((item.path, item.new) for item in changes if item.new is not None)
    return out


def _tree(catalog: SqlCatalog) -> dict[str, Entry]:
    return {e.path: e for e in catalog.iter_tree("r", catalog.get_repo("r").head)}


def test_a_commits_changes_turn_the_tree_before_into_the_tree_after(
    catalog: SqlCatalog,
) -> None:
    catalog.create_repo("r", public=True, actor="t")
    steps: list[list[Change]] = [
        [file_put(catalog, "d/e/a", b"a"), file_put(catalog, "b", b"b")],  # parents made too
        [file_put(catalog, "d/e/a", b"a2"), file_put(catalog, "d/c", b"c")],
        [Change("delete", "d"), Change("delete", "d/e/a"), Change("delete", "nothing")],
        [dir_put("d", 2), file_put(catalog, "d/a", b"a")],  # a directory made again
        [file_put(catalog, "b", b"b", mode=0o600)],
        [Change("put", "l", Entry("l", Kind.SYMLINK, 0o777, 5, target="b"))],
        [file_put(catalog, "d", b"now a file")],  # a directory replaced by a file
        [Change("delete", "b"), dir_put("b", 3), file_put(catalog, "b/x", b"x")],
    ]
    for changes in steps:
        before = _tree(catalog)
        result = catalog.commit("r", changes, author="t")
        assert result.created and result.changes is not None
        assert len({item.path for item in result.changes}) == len(result.changes)
        assert _applied(before, result.changes) == _tree(catalog)


def test_a_commit_that_changes_nothing_says_so(catalog: SqlCatalog) -> None:
    catalog.create_repo("r", public=True, actor="t")
    put = file_put(catalog, "a", b"a")
    catalog.commit("r", [put], author="t")
    again = catalog.commit("r", [put], author="t", message="the same again")
    assert not again.created and again.changes is None
