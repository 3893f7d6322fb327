"""Scanning real directories into entries, with the persistent hash cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import tain.push.scan as scan_module
from tain.core.manifest import Kind
from tain.push.cache import HashCache, default_cache_path
from tain.push.scan import scan_directory
from tain.push.snapshot import FileChunks


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "top.txt").write_bytes(b"top")
    (root / "docs" / "a.md").write_bytes(b"alpha")
    (root / "docs" / "deep" / "b.bin").write_bytes(b"\x00" * 5000)
    (root / "docs" / "deep" / "b.bin").chmod(0o600)
    (root / "link").symlink_to("docs/a.md")
    (root / "docs" / "up").symlink_to("../top.txt")
    (root / "escape").symlink_to("../outside.txt")
    (tmp_path / "outside.txt").write_bytes(b"secret")
    return root


def test_scan_finds_files_dirs_and_links(tree: Path) -> None:
    result = scan_directory(tree)
    entries = result.entries
    assert set(entries) == {
        "docs", "docs/deep", "empty", "top.txt", "docs/a.md", "docs/deep/b.bin", "link",
        "docs/up",
    }
    assert entries["empty"].kind is Kind.DIR
    assert entries["docs/deep"].kind is Kind.DIR
    assert entries["top.txt"].sha256 == sha(b"top")
    assert entries["docs/deep/b.bin"].size == 5000
    assert entries["docs/deep/b.bin"].mode == 0o600
    assert entries["link"].kind is Kind.SYMLINK
    assert entries["link"].target == "docs/a.md"
    assert entries["docs/up"].target == "../top.txt"
    assert result.files_scanned == 3
    assert result.files["top.txt"] == (tree / "top.txt").resolve()


def test_scan_records_mtime_and_mode(tree: Path) -> None:
    os.utime(tree / "top.txt", ns=(1_000_000_123, 2_000_000_456))
    entry = scan_directory(tree).entries["top.txt"]
    assert entry.mtime_ns == 2_000_000_456
    assert entry.mode == (tree / "top.txt").stat().st_mode & 0o7777


def test_link_pointing_outside_is_skipped_with_a_warning(tree: Path) -> None:
    result = scan_directory(tree)
    assert "escape" not in result.entries
    assert any("escape" in w and "outside" in w for w in result.warnings)


def test_links_are_never_followed(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "big.txt").write_bytes(b"x" * 100)
    (tree / "dirlink").symlink_to("docs")
    result = scan_directory(tree)
    assert result.entries["dirlink"].kind is Kind.SYMLINK
    assert not any(p.startswith("dirlink/") for p in result.entries)


def test_fifo_is_skipped(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    result = scan_directory(tree)
    assert "pipe" not in result.entries
    assert any(w.startswith("pipe:") for w in result.warnings)


def test_unreadable_file_is_skipped(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 0 does not stop root (CI runs as root), so the read itself is made to fail
    real_hash = scan_module.hash_file

    def deny(path: str, location: Path, **kw: int) -> FileChunks:
        if path == "top.txt":
            raise PermissionError(13, "Permission denied", str(location))
        return real_hash(path, location, **kw)

    monkeypatch.setattr(scan_module, "hash_file", deny)
    result = scan_directory(tree)
    assert "top.txt" not in result.entries
    assert any(w.startswith("top.txt:") for w in result.warnings)


def test_second_scan_of_unchanged_files_reads_nothing(tree: Path, tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.sqlite3"
    with HashCache(cache_file) as cache:
        first = scan_directory(tree, cache=cache)
    assert first.bytes_hashed == 3 + 5 + 5000
    with HashCache(cache_file) as cache:
        second = scan_directory(tree, cache=cache)
    assert second.bytes_hashed == 0
    assert second.entries == first.entries


def test_modified_file_is_hashed_again(tree: Path, tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.sqlite3"
    with HashCache(cache_file) as cache:
        scan_directory(tree, cache=cache)
    (tree / "docs" / "a.md").write_bytes(b"alpha, edited")
    with HashCache(cache_file) as cache:
        result = scan_directory(tree, cache=cache)
    assert result.bytes_hashed == len(b"alpha, edited")
    assert result.entries["docs/a.md"].sha256 == sha(b"alpha, edited")


def test_same_size_same_mtime_rewrite_is_caught_by_ctime_or_inode(
    tree: Path, tmp_path: Path
) -> None:
    cache_file = tmp_path / "cache.sqlite3"
    with HashCache(cache_file) as cache:
        scan_directory(tree, cache=cache)
    target = tree / "top.txt"
    before = target.stat()
    replacement = tree / "top.new"
    replacement.write_bytes(b"TOP")
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    replacement.replace(target)
    with HashCache(cache_file) as cache:
        result = scan_directory(tree, cache=cache)
    assert result.entries["top.txt"].sha256 == sha(b"TOP")


def test_cache_file_inside_the_directory_is_not_scanned(tree: Path) -> None:
    cache_file = tree / ".tain-cache.sqlite3"
    with HashCache(cache_file) as cache:
        result = scan_directory(tree, cache=cache, exclude=cache.files())
    assert not any(p.startswith(".tain-cache") for p in result.entries)


def test_broken_cache_file_is_replaced(tree: Path, tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.sqlite3"
    cache_file.write_bytes(b"this is not a database" * 100)
    with HashCache(cache_file) as cache:
        result = scan_directory(tree, cache=cache)
    assert result.entries["top.txt"].sha256 == sha(b"top")


def test_not_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    from tain.errors import UsageError

    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(UsageError):
        scan_directory(tmp_path / "file")


def test_default_cache_path_depends_on_directory_site_and_repo(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    one = default_cache_path(tmp_path, "http://a:8080", "docs", env)
    assert one.parent == tmp_path / "xdg" / "tain"
    assert one == default_cache_path(tmp_path, "http://a:8080/", "docs", env)
    assert one != default_cache_path(tmp_path, "http://a:8080", "other", env)
    assert one != default_cache_path(tmp_path, "http://b:8080", "docs", env)
