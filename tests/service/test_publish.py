"""The published tree follows the head by diffs, swaps atomically, and heals after a crash."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.catalog.models import DiffItem
from tain.catalog.sql import SqlCatalog, open_catalog
from tain.core.chunking import chunk_bytes
from tain.core.manifest import Change, Entry, Kind
from tain.service.publish import Publisher
from tain.store.local import LocalStore


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[SqlCatalog, LocalStore, Publisher]]:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    store = LocalStore([tmp_path / "blobs"])
    catalog.create_repo("r", public=True, actor="t")
    yield catalog, store, Publisher(tmp_path / "published", catalog, store)
    catalog.close()


def put(catalog: SqlCatalog, store: LocalStore, files: dict[str, bytes], mode: int = 0o644) -> None:
    changes = []
    for path, data in files.items():
        with store.new_blob() as w:
            w.write(data)
            sha = w.commit()
        catalog.add_blob(sha, len(data), chunk_bytes(data))
        changes.append(Change("put", path, Entry(path, Kind.FILE, mode, 10**18, sha, len(data))))
    catalog.commit("r", changes, author="t")


def tree_of(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "->" + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = "dir"
    return out


def diffs_asked(catalog: SqlCatalog, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (old, new) of every diff the catalog is asked for from now on."""
    asked: list[tuple[int, int]] = []
    diff = catalog.diff

    def counted(repo: str, old: int, new: int, prefix: str = "") -> list[DiffItem]:
        asked.append((old, new))
        return diff(repo, old, new, prefix)

    monkeypatch.setattr(catalog, "diff", counted)
    return asked


def test_publish_follows_each_revision(parts: tuple[SqlCatalog, LocalStore, Publisher]) -> None:
    catalog, store, pub = parts
    link = pub.root / "r"
    put(catalog, store, {"a/x": b"1", "b": b"2"})
    assert pub.publish("r") == 1
    assert tree_of(link) == {"a": "dir", "a/x": b"1", "b": b"2"}
    catalog.commit("r", [Change("delete", "a")], author="t")
    put(catalog, store, {"c/d/e": b"3"})
    catalog.commit("r", [Change("put", "l", Entry("l", Kind.SYMLINK, 0o777, 0, target="c/d/e"))],
                   author="t")
    assert pub.publish("r") == 4
    assert tree_of(link) == {"b": b"2", "c": "dir", "c/d": "dir", "c/d/e": b"3", "l": "->c/d/e"}
    put(catalog, store, {"b": b"changed"})
    pub.publish("r")
    assert (link / "b").read_bytes() == b"changed"
    assert link.is_symlink() and pub.published_revision("r") == 5


def test_files_are_hard_links_except_executables(
    parts: tuple[SqlCatalog, LocalStore, Publisher],
) -> None:
    catalog, store, pub = parts
    put(catalog, store, {"plain": b"p"})
    put(catalog, store, {"tool": b"#!/bin/sh\n"}, mode=0o755)
    pub.publish("r")
    sha = hashlib.sha256(b"p").hexdigest()
    blob = store.local_path(sha)
    assert blob is not None
    assert os.stat(pub.root / "r" / "plain").st_ino == os.stat(blob).st_ino
    tool = pub.root / "r" / "tool"
    assert os.access(tool, os.X_OK) and tool.stat().st_nlink == 1


def test_publish_heals_a_lost_or_garbled_state(
    parts: tuple[SqlCatalog, LocalStore, Publisher],
) -> None:
    catalog, store, pub = parts
    put(catalog, store, {"f": b"1"})
    pub.publish("r")
    put(catalog, store, {"f": b"2", "g": b"3"})
    state = pub.root / ".tain" / "r" / "state.json"
    state.write_text("{not json")  # as if killed mid-write of an older version
    pub.publish("r")
    assert tree_of(pub.root / "r") == {"f": b"2", "g": b"3"}
    saved = json.loads(state.read_text())
    assert saved[saved["active"]] == 2
    put(catalog, store, {"g": b"3b"})
    pub.publish("r")  # both trees exist now: one at 2, one at 3
    # a kill in the middle of applying the next diff leaves the inactive tree half-updated
    put(catalog, store, {"h": b"4", "f": b"5"})
    saved = json.loads(state.read_text())
    inactive = pub.root / ".tain" / "r" / ("a" if saved["active"] == "b" else "b")
    (inactive / "h").write_bytes(b"half-written")
    (inactive / "f").unlink()
    pub.publish("r")
    assert tree_of(pub.root / "r") == {"f": b"5", "g": b"3b", "h": b"4"}


def test_both_trees_are_built_whole_without_hashing_any_blob_again(
    parts: tuple[SqlCatalog, LocalStore, Publisher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first publish builds one tree, the second builds the other from nothing: both
    hold every kind of entry, and neither hashes a blob the store verified on its way
    in (a hard link changes a blob file's ctime, not its bytes)."""
    import tain.store.local as local_module

    catalog, store, pub = parts
    files = {f"d{i}/s/f{j}": f"{i}.{j}".encode() for i in range(3) for j in range(4)}
    put(catalog, store, files)
    put(catalog, store, {"bin/tool": b"#!/bin/sh\n"}, mode=0o755)
    catalog.commit("r", [Change("put", "l", Entry("l", Kind.SYMLINK, 0o777, 0, target="d0"))],
                   author="t")
    hashed: list[object] = []
    real = local_module.hashlib.file_digest

    def counting(*args: object, **kwargs: object) -> object:
        hashed.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(local_module.hashlib, "file_digest", counting)
    expected: dict[str, bytes | str] = {
        **{f"d{i}": "dir" for i in range(3)}, **{f"d{i}/s": "dir" for i in range(3)},
        **files, "bin": "dir", "bin/tool": b"#!/bin/sh\n", "l": "->d0",
    }
    assert pub.publish("r") == 3
    assert tree_of(pub.root / "r") == expected
    put(catalog, store, {"new": b"n"})
    assert pub.publish("r") == 4
    assert tree_of(pub.root / "r") == {**expected, "new": b"n"}
    state = json.loads((pub.root / ".tain" / "r" / "state.json").read_text())
    assert state == {"a": 3, "b": 4, "active": "b"}
    assert os.access(pub.root / "r" / "bin" / "tool", os.X_OK)
    assert hashed == []


def test_the_other_tree_takes_the_last_diff_from_memory(
    parts: tuple[SqlCatalog, LocalStore, Publisher], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, store, pub = parts
    asked = diffs_asked(catalog, monkeypatch)
    files: dict[str, bytes] = {}
    for rev in range(1, 6):
        new = {f"d{rev % 2}/f{rev}": f"{rev}".encode(), "shared": f"v{rev}".encode()}
        put(catalog, store, new)
        files.update(new)
        if rev == 3:
            catalog.commit("r", [Change("delete", "d0")], author="t")
            files = {p: d for p, d in files.items() if not p.startswith("d0/")}
        pub.publish("r")
        dirs = {p.split("/")[0]: "dir" for p in files if "/" in p}
        assert tree_of(pub.root / "r") == {**files, **dirs}
    # the first two build both trees whole; the third asks for both steps (nothing is
    # kept yet); after that, each publish asks only for what is new
    assert asked == [(1, 2), (2, 4), (4, 5), (5, 6)]


def test_a_kept_diff_of_a_repository_made_again_is_not_used(
    parts: tuple[SqlCatalog, LocalStore, Publisher],
) -> None:
    catalog, store, pub = parts
    for rev in range(1, 4):
        put(catalog, store, {f"old{rev}": b"old"})
        pub.publish("r")  # the third keeps the diff 2 -> 3 of the first repository r
    other_process = Publisher(pub.root, catalog, store)
    catalog.delete_repo("r", actor="t")
    other_process.remove("r")
    catalog.create_repo("r", public=True, actor="t")
    for rev in range(1, 4):
        put(catalog, store, {f"new{rev}": b"new"})
        other_process.publish("r")  # the trees show 2 and 3 again, of the new r
    put(catalog, store, {"new4": b"new"})
    pub.publish("r")  # from 2 to 4 by way of 3: the kept 2 -> 3 is another r's
    assert tree_of(pub.root / "r") == {f"new{rev}": b"new" for rev in range(1, 5)}


def test_a_publish_takes_what_its_commit_changed_from_the_commit(
    parts: tuple[SqlCatalog, LocalStore, Publisher], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, store, pub = parts
    put(catalog, store, {"keep": b"k", "d/gone": b"g"})
    pub.publish("r")  # the first two builds are whole: no diff asked either way
    put(catalog, store, {"second": b"2"})
    pub.publish("r")
    asked = diffs_asked(catalog, monkeypatch)
    result = catalog.commit("r", [Change("delete", "d")], author="t")
    pub.publish("r", result)
    put(catalog, store, {"d": b"a file now"})
    stale = catalog.commit("r", [Change("delete", "second")], author="t")
    put(catalog, store, {"last": b"l"})
    pub.publish("r", stale)  # not what made the head: the catalog is asked
    assert tree_of(pub.root / "r") == {"keep": b"k", "d": b"a file now", "last": b"l"}
    # 1 -> 2 for the tree built whole (nothing kept yet), 2 -> 3 from the commit (and
    # kept for the other tree), 3 -> 6 from the catalog
    assert asked == [(1, 2), (3, 6)]
