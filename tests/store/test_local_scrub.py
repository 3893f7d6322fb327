"""LocalStore's scrub capability: every copy checked in full (no cache), repairs that
restore ``copies`` copies atomically, fallback placement while a disk is gone, and
quarantine of bad copies that other names still link to."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from tain.core.digests import sha256_hex
from tain.errors import IntegrityError, StorageError
from tain.store.local import LocalStore
from tain.store.scrub import CopyState, Quarantine, ScrubbableStore
from tests.contracts.test_store_contract import put
from tests.ops import blob_copies, good_copies, rot


@pytest.fixture
def dirs(tmp_path: Path) -> list[Path]:
    return [tmp_path / f"disk{i}" for i in range(3)]


def test_local_store_has_the_capabilities(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    assert isinstance(store, ScrubbableStore)
    assert isinstance(store, Quarantine)


def test_check_reads_every_copy_even_when_reads_were_cached(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    data = b"cached" * 10_000
    sha = put(store, data)
    with store.open(sha) as f:  # verified and remembered
        assert f.read() == data
    first, second = blob_copies(dirs, sha)
    st = first.stat()
    rot(first)
    # make the rotten copy look exactly as before: only a full read can tell
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns))
    seen: list[int] = []
    check = store.check_copies(sha, seen.append)
    states = {Path(c.location): c.state for c in check.copies}
    assert states == {first: CopyState.CORRUPT, second: CopyState.OK}
    assert sum(seen) == check.bytes_read == 2 * len(data)
    assert not check.healthy and not check.lost
    assert store.repair(check).written == (str(first),)
    assert store.check_copies(sha).healthy
    with store.open(sha) as f:
        assert f.read() == data


def test_missing_dir_means_fallback_placement_and_recreated_dir_is_refilled(
    dirs: list[Path],
) -> None:
    store = LocalStore(dirs, copies=2)
    shas = [put(store, f"blob {i}".encode() * 100) for i in range(20)]
    shutil.rmtree(dirs[0])
    for sha in shas:
        check = store.check_copies(sha)
        if not check.healthy:  # it had a copy on the lost disk
            store.repair(check)
        assert len(good_copies(dirs, sha)) == 2
    dirs[0].mkdir()  # a new, empty disk mounted in its place
    refilled = 0
    for sha in shas:
        check = store.check_copies(sha)
        if not check.healthy:
            result = store.repair(check)
            assert len(result.written) == 1 and len(result.removed) == 1
            refilled += 1
        assert len(good_copies(dirs, sha)) == 2
    assert refilled > 0
    assert any(good_copies([dirs[0]], sha) for sha in shas)


def test_too_few_dirs_for_copies_is_a_storage_error(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=3)
    sha = put(store, b"three copies")
    shutil.rmtree(dirs[1])
    check = store.check_copies(sha)
    assert not check.healthy
    with pytest.raises(StorageError, match="only 2 of the 3"):
        store.repair(check)


def test_repair_from_a_source_checks_its_digest(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=2)
    data = b"precious" * 1000
    sha = put(store, data)
    for path in blob_copies(dirs, sha):
        rot(path)
    check = store.check_copies(sha)
    assert check.lost
    with pytest.raises(IntegrityError, match="no good copy"):
        store.repair(check)
    with pytest.raises(IntegrityError):
        store.repair(check, io.BytesIO(b"impostor"))
    assert good_copies(dirs, sha) == []
    store.repair(check, io.BytesIO(data))
    assert len(good_copies(dirs, sha)) == 2
    assert not list((dirs[0] / "tmp").iterdir())


def test_bad_copies_with_other_links_are_quarantined_until_released(
    dirs: list[Path], tmp_path: Path
) -> None:
    store = LocalStore(dirs, copies=2)
    data = b"linked" * 5000
    sha = put(store, data)
    copy = blob_copies(dirs, sha)[0]
    outside = tmp_path / "published-file"
    os.link(copy, outside)
    rot(copy)
    store.repair(store.check_copies(sha))
    [held] = list(store.quarantined())
    assert held.sha256 == sha
    assert os.stat(held.location).st_ino == outside.stat().st_ino  # the bad bytes, kept
    store.release(held)
    assert list(store.quarantined()) == []


def test_a_read_that_skips_a_bad_copy_rewrites_it(dirs: list[Path]) -> None:
    store = LocalStore(dirs, copies=3)
    data = b"heal me" * 3000
    sha = put(store, data)
    first = store.local_path(sha)
    assert first is not None
    rot(first)  # the copy reads try first
    store = LocalStore(dirs, copies=3)  # a restart: nothing is remembered as verified
    with store.open(sha) as f:
        assert f.read() == data
    assert sha256_hex(first.read_bytes()) == sha
    assert len(good_copies(dirs, sha)) == 3
