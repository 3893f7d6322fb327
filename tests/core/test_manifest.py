from __future__ import annotations

from typing import Any

import pytest

from tain.core.manifest import (
    Change,
    Entry,
    Kind,
    canonical_json,
    change_from_json,
    change_to_json,
    check_changes,
    plan_changes,
)
from tain.errors import InvalidPath, InvalidRequest

SHA = "a" * 64
SHA2 = "b" * 64


def f(path: str, sha: str = SHA, size: int = 1, mode: int = 0o644, mtime: int = 1) -> Entry:
    return Entry(path, Kind.FILE, mode, mtime, sha, size)


def d(path: str, mtime: int = 1) -> Entry:
    return Entry(path, Kind.DIR, 0o755, mtime)


def state(*entries: Entry) -> dict[str, Entry]:
    return {e.path: e for e in entries}


def test_plan_nothing_when_equal() -> None:
    s = state(d("a"), f("a/x"))
    assert plan_changes(s, s) == []


def test_plan_directory_mtime_is_not_a_change() -> None:
    assert plan_changes(state(d("a", mtime=5)), state(d("a", mtime=1))) == []


def test_plan_put_delete_and_top_level_deletes_only() -> None:
    local = state(d("a"), f("a/x", SHA2), f("new"))
    remote = state(d("a"), f("a/x"), d("gone"), f("gone/1"), d("gone/sub"), f("gone/sub/2"),
                   f("gone-sibling"))
    changes = plan_changes(local, remote)
    assert [(c.op, c.path) for c in changes] == [
        ("delete", "gone"), ("delete", "gone-sibling"), ("put", "a/x"), ("put", "new"),
    ]


def test_plan_kind_change_is_delete_then_put() -> None:
    changes = plan_changes(state(f("p")), state(d("p"), f("p/child")))
    assert [(c.op, c.path) for c in changes] == [("delete", "p"), ("put", "p")]


def test_plan_mode_and_mtime_changes_are_puts() -> None:
    assert [c.path for c in plan_changes(state(f("x", mode=0o755)), state(f("x")))] == ["x"]
    assert [c.path for c in plan_changes(state(f("x", mtime=9)), state(f("x")))] == ["x"]


def raw_put(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"op": "put", "path": "a/b", "kind": "file", "mode": 0o644,
                            "mtime_ns": 5, "sha256": SHA, "size": 3, "chunks": [[SHA2, 3]]}
    base.update(over)
    return base


def test_change_json_round_trip() -> None:
    change = change_from_json(raw_put())
    assert change == Change("put", "a/b", f("a/b", size=3, mtime=5), ((SHA2, 3),))
    assert change_from_json(change_to_json(change)) == change
    link = change_from_json({"op": "put", "path": "l", "kind": "symlink", "target": "a/b"})
    assert link.entry is not None and link.entry.target == "a/b"
    assert change_from_json({"op": "delete", "path": "x/"}) == Change("delete", "x")


@pytest.mark.parametrize(
    "raw",
    [raw_put(op="move"), raw_put(kind="fifo"), raw_put(sha256="XYZ"), raw_put(size=-1),
     raw_put(mode=0o17777), raw_put(mode="644"), raw_put(size=True),
     raw_put(chunks=[[SHA2, 2]]), raw_put(chunks=[["short", 3]]), raw_put(chunks=[[SHA2, 0]]),
     {"op": "put", "path": "l", "kind": "symlink", "target": "../../out"}],
)
def test_bad_changes_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises((InvalidRequest, InvalidPath)):
        change_from_json(raw)


def test_check_changes_refuses_ambiguity() -> None:
    with pytest.raises(InvalidRequest, match="twice"):
        check_changes([Change("delete", "x"), Change("put", "x", f("x"))])
    with pytest.raises(InvalidRequest, match="parent"):
        check_changes([Change("put", "x", f("x")), Change("put", "x/y", f("x/y"))])
    ok = [Change("put", "x", d("x")), Change("put", "x/y", f("x/y"))]
    assert check_changes(ok) == ok


def test_canonical_json_is_stable() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
