from __future__ import annotations

import pytest

from tain.core.paths import (
    ancestors,
    check_repo_name,
    check_symlink_target,
    check_user_name,
    is_within,
    normalize_path,
    parent_of,
)
from tain.errors import InvalidPath, UsageError


@pytest.mark.parametrize(
    ("raw", "want"),
    [("a", "a"), ("a/b/c.txt", "a/b/c.txt"), ("dir/", "dir"), ("ünï/cödé", "ünï/cödé"),
     (b"bytes/ok", "bytes/ok"), ("x" * 255, "x" * 255)],
)
def test_valid_paths_are_kept(raw: str | bytes, want: str) -> None:
    assert normalize_path(raw) == want


@pytest.mark.parametrize(
    "raw",
    ["", "/abs", "a/../b", "..", ".", "a/./b", "a//b", "nul\x00", "tab\tname", "del\x7f",
     "x" * 256, "/".join(["y" * 200] * 21), b"\xff\xfe", "lone\ud800"],
)
def test_invalid_paths_are_refused(raw: str | bytes) -> None:
    with pytest.raises(InvalidPath):
        normalize_path(raw)


def test_root_only_when_allowed() -> None:
    assert normalize_path("", allow_root=True) == ""
    with pytest.raises(InvalidPath):
        normalize_path("/", allow_root=True)  # absolute, even for the root
    with pytest.raises(InvalidPath):
        normalize_path("")


def test_tree_helpers() -> None:
    assert parent_of("a/b/c") == "a/b" and parent_of("top") == ""
    assert ancestors("a/b/c") == ["a", "a/b"] and ancestors("top") == []
    assert is_within("a/b", "a") and is_within("a", "a") and is_within("x", "")
    assert not is_within("ab", "a") and not is_within("a-b/c", "a")


@pytest.mark.parametrize(
    ("link", "target", "ok"),
    [("a/l", "b", True), ("a/l", "../b", True), ("a/b/l", "../../c", True),
     ("l", "../x", False), ("a/l", "../../x", False), ("l", "/etc/passwd", False),
     ("l", "", False), ("a/l", "x/../../..", False), ("a/l", "./b/../c", True)],
)
def test_symlinks_stay_inside(link: str, target: str, ok: bool) -> None:
    if ok:
        assert check_symlink_target(target, link) == target
    else:
        with pytest.raises(InvalidPath):
            check_symlink_target(target, link)


def test_names() -> None:
    assert check_repo_name("debian-security") == "debian-security"
    for bad in ("Debian", "api", "console", "-x", "a b", "x" * 64, ""):
        with pytest.raises(UsageError):
            check_repo_name(bad)
    assert check_user_name("alice@example.org") == "alice@example.org"
    with pytest.raises(UsageError):
        check_user_name("bad name")
