"""LocalStore behaviour beyond the contract: copies, crash safety, disk errors."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tain.config import StoreConfig
from tain.core.digests import blake3_hex, sha256_hex
from tain.errors import IntegrityError, StorageError, UsageError
from tain.store.local import LocalStore
from tests.contracts.test_store_contract import flip_first_byte, put, read


@pytest.fixture
def dirs(tmp_path: Path) -> list[Path]:
    return [tmp_path / f"disk{i}" for i in range(3)]


def copies_of(dirs: list[Path], sha: str) -> list[Path]:
    return [p for d in dirs for p in d.glob(f"blobs/*/{sha}")]


def tmp_files(dirs: list[Path]) -> list[Path]:
    return [p for d in dirs for p in (d / "tmp").glob("*")]


def fail_writes(monkeypatch: pytest.MonkeyPatch, code: int = errno.ENOSPC) -> None:
    def write(fd: int, data: Any) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", write)


def test_layout(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = LocalStore([root])
    sha = put(store, b"layout")
    assert (root / "blobs" / sha[:2] / sha).read_bytes() == b"layout"
    digest = blake3_hex(b"chunk")
    store.put_chunk(digest, b"chunk")
    assert (root / "chunks" / digest[:2] / digest).read_bytes() == b"chunk"
    assert store.local_path(sha) == root / "blobs" / sha[:2] / sha


def test_each_blob_is_on_exactly_copies_dirs(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    shas = [put(store, f"blob {i}".encode()) for i in range(30)]
    for sha in shas:
        assert len(copies_of(dirs, sha)) == 2
    used = {path.parents[2] for sha in shas for path in copies_of(dirs, sha)}
    assert used == set(dirs)


def test_placement_is_deterministic(dirs: list[Path]) -> None:
    a = LocalStore(dirs, copies=2)
    sha = put(a, b"where do I go")
    first = sorted(copies_of(dirs, sha))
    a.delete(sha)
    b = LocalStore(dirs, copies=2)
    put(b, b"where do I go")
    assert sorted(copies_of(dirs, sha)) == first


def test_blob_survives_losing_a_data_dir(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    blobs = {
        put(store, f"survivor {i}".encode() * 100): f"survivor {i}".encode() * 100
        for i in range(20)
    }
    shutil.rmtree(dirs[0])
    for restarted in (store, LocalStore(dirs, copies=2)):
        assert restarted.has_blobs(blobs) == set(blobs)
        assert set(restarted.iter_blobs()) == set(blobs)
        for sha, data in blobs.items():
            assert read(restarted, sha) == data
            assert restarted.size(sha) == len(data)


def test_reads_the_good_copy_when_one_is_corrupt(
    dirs: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(dirs, copies=2)
    data = b"two copies, one bad" * 50
    sha = put(store, data)
    first, second = copies_of(dirs, sha)
    caplog.set_level(logging.ERROR, logger="tain.store")
    healed = 0
    for bad, good in ((first, second), (second, first)):
        flip_first_byte(bad)
        assert read(store, sha) == data
        assert store.local_path(sha) in (bad, good)
        assert store.size(sha) == len(data)
        if bad.read_bytes() == data:  # tried first and skipped: the read rewrote it
            healed += 1
        else:
            bad.chmod(0o644)
            bad.write_bytes(data)
            bad.chmod(0o444)
    assert healed == 1
    # Each copy was bad once, so the bad one was tried first at least once.
    assert any("corrupt" in r.getMessage() for r in caplog.records)


def test_all_copies_corrupt_raises_integrity_error(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    sha = put(store, b"doomed")
    for path in copies_of(dirs, sha):
        flip_first_byte(path)
    with pytest.raises(IntegrityError):
        store.open(sha)
    with pytest.raises(IntegrityError):
        store.local_path(sha)


def test_verification_is_remembered_while_the_file_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = hashlib.file_digest

    def counting(f: Any, digest: str) -> Any:
        calls.append(digest)
        return real(f, digest)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    store = LocalStore([tmp_path / "d"])
    sha = put(store, b"hash me once")
    assert read(store, sha) == b"hash me once"
    assert read(store, sha) == b"hash me once"
    assert store.local_path(sha) is not None
    assert len(calls) == 0  # hashed on its way in: remembered from the start
    flip_first_byte(copies_of([tmp_path / "d"], sha)[0])
    with pytest.raises(IntegrityError):
        store.open(sha)
    assert len(calls) == 1


def test_blob_files_are_read_only(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=3)
    sha = put(store, b"read only")
    paths = copies_of(dirs, sha)
    assert len(paths) == 3
    for path in paths:
        assert path.stat().st_mode & 0o777 == 0o444


def test_temp_files_are_not_blobs(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    writer = store.new_blob()
    writer.write(b"in flight" * 1000)
    assert tmp_files(dirs)
    assert list(store.iter_blobs()) == []
    assert store.has_blobs([sha256_hex(b"in flight" * 1000)]) == set()
    writer.abort()
    assert tmp_files(dirs) == []


def test_commit_leaves_no_temp_files(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    for i in range(10):
        put(store, f"tidy {i}".encode() * 10_000)
    assert tmp_files(dirs) == []


def test_kill_mid_write_leaves_no_blob(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    data = b"interrupted " * 200_000
    writer = store.new_blob()
    writer.write(data)  # the process "dies" here: no commit, no abort
    assert tmp_files(dirs)

    restarted = LocalStore(dirs, copies=2)
    assert list(restarted.iter_blobs()) == []
    assert restarted.has_blobs([sha256_hex(data)]) == set()
    assert restarted.clean_tmp(time.time() - 3600) == 0  # too fresh to be garbage
    assert restarted.clean_tmp(time.time() + 60) >= 1
    assert tmp_files(dirs) == []
    writer.abort()  # only closes the descriptor the "dead" process held


def test_enospc_while_writing_raises_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "full"
    store = LocalStore([root])
    data = b"too big for the disk" * 100_000
    fail_writes(monkeypatch)
    with pytest.raises(StorageError) as info, store.new_blob() as writer:
        writer.write(data)
        writer.commit()
    message = str(info.value)
    assert str(root) in message
    assert "No space left on device" in message
    assert "\n" not in message
    monkeypatch.undo()
    assert list(store.iter_blobs()) == []
    assert tmp_files([root]) == []


def test_enospc_at_commit_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "full"
    store = LocalStore([root])
    with store.new_blob() as writer:
        writer.write(b"small, still buffered")
        fail_writes(monkeypatch, errno.EDQUOT)
        with pytest.raises(StorageError, match=str(root)):
            writer.commit()
    monkeypatch.undo()
    assert list(store.iter_blobs()) == []
    assert tmp_files([root]) == []


def test_enospc_while_copying_keeps_no_partial_copy(
    dirs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(dirs, copies=3)
    with store.new_blob() as writer:
        writer.write(b"needs three copies")
        fail_writes(monkeypatch)
        with pytest.raises(StorageError):
            writer.commit()
    monkeypatch.undo()
    assert tmp_files(dirs) == []
    # A whole copy may have been published before the failure; never a partial one.
    sha = sha256_hex(b"needs three copies")
    for path in copies_of(dirs, sha):
        assert path.read_bytes() == b"needs three copies"
    assert put(store, b"needs three copies") == sha
    assert len(copies_of(dirs, sha)) == 3


def test_enospc_staging_a_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "full"
    store = LocalStore([root])
    digest = blake3_hex(b"chunk")
    fail_writes(monkeypatch)
    with pytest.raises(StorageError, match=str(root)):
        store.put_chunk(digest, b"chunk")
    monkeypatch.undo()
    assert store.has_chunks([digest]) == set()
    assert tmp_files([root]) == []


def test_missing_data_dir_on_write_raises_storage_error(tmp_path: Path) -> None:
    root = tmp_path / "unmounted"
    store = LocalStore([root])
    shutil.rmtree(root)
    with pytest.raises(StorageError, match=str(root)):
        store.new_blob()
    assert not root.exists()  # never recreated behind an unmounted disk's back


def test_corrupt_chunk_is_dropped(tmp_path: Path) -> None:
    store = LocalStore([tmp_path / "d"])
    digest = blake3_hex(b"chunk bytes")
    store.put_chunk(digest, b"chunk bytes")
    flip_first_byte(next((tmp_path / "d").glob(f"chunks/*/{digest}")))
    with pytest.raises(IntegrityError):
        store.get_chunk(digest)
    assert store.has_chunks([digest]) == set()
    store.put_chunk(digest, b"chunk bytes")
    assert store.get_chunk(digest) == b"chunk bytes"


def test_chunks_are_staged_in_the_first_dir(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    digest = blake3_hex(b"staged")
    store.put_chunk(digest, b"staged")
    assert [p.parents[2] for d in dirs for p in d.glob(f"chunks/*/{digest}")] == [dirs[0]]


def test_bad_configuration_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        LocalStore([])
    with pytest.raises(UsageError):
        LocalStore([tmp_path / "a"], copies=2)
    with pytest.raises(UsageError):
        LocalStore([tmp_path / "a"], copies=0)
    with pytest.raises(UsageError):
        LocalStore([tmp_path / "a", tmp_path / "b" / ".." / "a"], copies=1)


def test_from_config(dirs: list[Path]) -> None:
    store = LocalStore.from_config(StoreConfig(data_dirs=tuple(dirs), copies=2))
    assert store.data_dirs == tuple(dirs)
    assert store.copies == 2


def test_group_fsyncs_before_linking_and_each_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order that makes a grouped commit crash-safe: every blob's bytes are fsynced
    before any blob gets its name, and each fan-out directory is fsynced after its
    last link, once."""
    import tain.store.local_group as local_group

    root = tmp_path / "data"
    store = LocalStore([root])
    events: list[tuple[str, str]] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def link(src: Any, dst: Any, **kw: Any) -> None:
        events.append(("link", str(dst)))
        real_link(src, dst, **kw)

    datas = [f"blob {i}".encode() for i in range(40)]
    with store.blob_group() as group:
        for data in datas:
            with group.new_blob() as writer:
                writer.write(data)
                writer.commit()
        assert not any(root.glob("blobs/*/*")), "nothing is visible before finish"
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "link", link)
        monkeypatch.setattr(local_group, "fsync_dir", lambda p: events.append(("dir", str(p))))
        group.finish()
    first_link = next(i for i, (kind, _) in enumerate(events) if kind == "link")
    synced = {path for kind, path in events[:first_link] if kind == "fsync"}
    assert len(synced) == len(datas)
    finals = [Path(path) for kind, path in events if kind == "link"]
    assert {p.name for p in finals} == {sha256_hex(d) for d in datas}
    dirs = [path for kind, path in events if kind == "dir"]
    assert sorted(dirs) == sorted({str(p.parent) for p in finals})
    last_link = max(i for i, (kind, _) in enumerate(events) if kind == "link")
    assert all(i > last_link for i, (kind, _) in enumerate(events) if kind == "dir")
    assert tmp_files([root]) == []


def test_a_large_group_syncs_each_filesystem_before_the_first_link_and_after_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From SYNCFS_MIN blobs on, one syncfs per filesystem replaces the per-file and
    per-directory fsyncs, in the same order: bytes durable, then names, then durable."""
    import tain.store.local_group as local_group

    roots = [tmp_path / "d1", tmp_path / "d2"]  # two dirs, one filesystem
    store = LocalStore(roots, copies=2)
    events: list[tuple[str, str]] = []
    real_sync, real_link = local_group.sync_filesystem, os.link

    def sync(path: Path) -> None:
        events.append(("syncfs", str(path)))
        real_sync(path)

    def link(src: Any, dst: Any, **kw: Any) -> None:
        events.append(("link", str(dst)))
        real_link(src, dst, **kw)

    datas = [f"blob {i}".encode() for i in range(local_group.SYNCFS_MIN)]
    with store.blob_group() as group:
        for data in datas:
            with group.new_blob() as writer:
                writer.write(data)
                writer.commit()
        monkeypatch.setattr(local_group, "sync_filesystem", sync)
        monkeypatch.setattr(local_group, "fsync_dir", lambda p: events.append(("dir", str(p))))
        monkeypatch.setattr(local_group, "fsync_file", lambda p: events.append(("file", str(p))))
        monkeypatch.setattr(os, "link", link)
        group.finish()
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "syncfs" and kinds[-1] == "syncfs"
    assert kinds.count("syncfs") == 2 and "dir" not in kinds and "file" not in kinds
    finals = {Path(path).name for kind, path in events if kind == "link"}
    assert finals == {sha256_hex(d) for d in datas}
    for data in datas:
        assert read(store, sha256_hex(data)) == data
        assert len(copies_of(roots, sha256_hex(data))) == 2
    assert tmp_files(roots) == []


def test_a_large_group_whose_filesystem_sync_fails_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tain.store.local_group as local_group

    root = tmp_path / "data"
    store = LocalStore([root])

    def failing(path: Path) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with store.blob_group() as group:
        for i in range(local_group.SYNCFS_MIN):
            with group.new_blob() as writer:
                writer.write(f"lost {i}".encode())
                writer.commit()
        monkeypatch.setattr(local_group, "sync_filesystem", failing)
        with pytest.raises(StorageError, match="Input/output error"):
            group.finish()
    assert not any(root.glob("blobs/*/*"))
    assert tmp_files([root]) == []


def test_group_left_without_finish_removes_its_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = LocalStore([root])
    with store.blob_group() as group:
        with group.new_blob() as writer:
            writer.write(b"never finished")
            writer.commit()
        assert len(tmp_files([root])) == 1
    assert tmp_files([root]) == []
    assert not any(root.glob("blobs/*/*"))


def test_adopted_chunk_becomes_a_read_only_blob_without_a_copy(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = LocalStore([root])
    data = b"adopt me"
    digest, sha = blake3_hex(data), sha256_hex(data)
    store.put_chunk(digest, data)
    with store.blob_group() as group:
        assert group.adopt_chunk(sha, digest, len(data))
        group.finish()
    blob = root / "blobs" / sha[:2] / sha
    chunk = root / "chunks" / digest[:2] / digest
    assert blob.stat().st_ino == chunk.stat().st_ino
    assert blob.stat().st_mode & 0o777 == 0o444
    assert tmp_files([root]) == []
    # Staging the chunk again replaces its name, never the blob's bytes.
    store.put_chunk(digest, data)
    assert chunk.stat().st_ino != blob.stat().st_ino
    assert read(store, sha) == data


def test_group_on_a_full_disk_is_a_storage_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    store = LocalStore([root])
    with store.blob_group() as group:
        with group.new_blob() as writer:
            writer.write(b"lost to a full disk")
            writer.commit()

        def fsync(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", fsync)
        with pytest.raises(StorageError):
            group.finish()
    assert not any(root.glob("blobs/*/*"))
    assert tmp_files([root]) == []


@pytest.mark.parametrize("grouped", [False, True])
def test_a_blob_just_stored_is_not_hashed_again_by_its_first_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grouped: bool
) -> None:
    """Its bytes were hashed on their way in; publishing links it at once."""
    import tain.store.local as local_module

    store = LocalStore([tmp_path / "data"])
    data = os.urandom(100_000)
    if grouped:
        with store.blob_group() as group:
            with group.new_blob() as writer:
                writer.write(data)
                sha = writer.commit()
            group.finish()
    else:
        sha = put(store, data)

    def no_rehash(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a blob just stored was hashed again")

    monkeypatch.setattr(local_module.hashlib, "file_digest", no_rehash)
    assert store.local_path(sha) == tmp_path / "data" / "blobs" / sha[:2] / sha
    assert read(store, sha) == data
    monkeypatch.undo()
    flip_first_byte(store.local_path(sha) or Path())  # a later change is still caught
    with pytest.raises(IntegrityError):
        store.open(sha)


def test_a_hard_link_to_a_verified_blob_does_not_make_it_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing links every blob into two trees; a link changes the file's ctime but
    not its bytes, so the verification stands. A copy replaced by rename is hashed."""
    import tain.store.local as local_module

    store = LocalStore([tmp_path / "data"])
    sha = put(store, b"link me" * 1000)
    blob = store.local_path(sha)
    assert blob is not None
    calls: list[object] = []
    real = local_module.hashlib.file_digest

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(local_module.hashlib, "file_digest", counting)
    ctime = blob.stat().st_ctime_ns
    for tree in ("a", "b"):
        (tmp_path / tree).mkdir()
        os.link(blob, tmp_path / tree / "file")
    assert blob.stat().st_nlink == 3
    assert blob.stat().st_ctime_ns >= ctime
    assert store.local_path(sha) == blob and read(store, sha) == b"link me" * 1000
    assert calls == []

    # same size, same mtime, other bytes, arriving by rename: a new inode, hashed again
    st = blob.stat()
    other = tmp_path / "other"
    other.write_bytes(b"LINK ME" * 1000)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, blob)
    with pytest.raises(IntegrityError):
        store.open(sha)
    assert len(calls) == 1


def test_sync_filesystem_is_the_real_syscall_and_reports_errors(tmp_path: Path) -> None:
    from tain.store.durable import can_sync_filesystems, sync_filesystem

    assert can_sync_filesystems()  # Linux with glibc: syncfs(2) is there
    (tmp_path / "f").write_bytes(b"dirty")
    sync_filesystem(tmp_path)
    with pytest.raises(FileNotFoundError):
        sync_filesystem(tmp_path / "missing")


def test_blobs_stored_by_a_group_are_not_hashed_again_to_be_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore([tmp_path / "d"])
    data = b"a small file sent whole"
    with store.blob_group() as group:
        group.put(sha256_hex(data), data)
        group.finish()
    hashed: list[object] = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda *a: hashed.append(a) or real(*a))
    path = store.local_path(sha256_hex(data))  # what publishing links
    assert path is not None and path.read_bytes() == data
    assert hashed == []  # its bytes were hashed on the way in
    flip_first_byte(path)  # a changed file is another version: checked again
    with pytest.raises(IntegrityError):
        store.local_path(sha256_hex(data))
    assert hashed


@pytest.mark.parametrize("count", [1, 64])  # per-file fsyncs, and one syncfs for the group
def test_a_group_replaces_a_corrupt_copy_already_in_place(tmp_path: Path, count: int) -> None:
    """The common case links straight into the fan-out dir; a name taken already (here
    by a corrupt leftover) goes the general way, which checks and replaces it."""
    root = tmp_path / "data"
    store = LocalStore([root])
    datas = [f"blob {i} of {count}".encode() for i in range(count)]
    taken = root / "blobs" / sha256_hex(datas[0])[:2] / sha256_hex(datas[0])
    taken.write_bytes(b"rotten leftover")
    with store.blob_group() as group:
        for data in datas:
            group.put(sha256_hex(data), data)
        group.finish()
    for data in datas:
        assert read(store, sha256_hex(data)) == data
    assert taken.read_bytes() == datas[0] and tmp_files([root]) == []
