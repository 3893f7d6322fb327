"""A file's snapshot is trusted only when no write can hide in the same clock tick:
equal stamps before and after a read do not prove a file written a moment ago was
read whole ("racy git"), so such a read is refused as racy and done again later."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tain.push.snapshot import RACY_NS, FileChanged, chunk_file, read_snapshot


def _ctime_ns(path: Path) -> int:
    return os.stat(path).st_ctime_ns


def test_a_file_written_within_the_racy_window_is_not_trusted(tmp_path: Path) -> None:
    hot = tmp_path / "hot.bin"
    hot.write_bytes(b"half written" * 1000)
    written = _ctime_ns(hot)
    with pytest.raises(FileChanged) as caught:
        read_snapshot("hot.bin", hot, now_ns=lambda: written + RACY_NS // 2)
    assert caught.value.racy and caught.value.path == "hot.bin"


def test_a_file_older_than_the_window_is_read(tmp_path: Path) -> None:
    cold = tmp_path / "cold.bin"
    data = os.urandom(300_000)
    cold.write_bytes(data)
    snap = read_snapshot("cold.bin", cold, now_ns=lambda: _ctime_ns(cold) + RACY_NS + 1)
    assert snap.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(c.length for c in snap.chunks) == len(data) == snap.stamp.size


def test_chunk_file_waits_out_the_window_instead_of_giving_up(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"just written")  # read at once: racy first, then trusted
    snap = chunk_file("fresh.bin", fresh)
    assert snap.sha256 == hashlib.sha256(b"just written").hexdigest()
