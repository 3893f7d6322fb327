"""Reading a file into its SHA-256 and chunks in one pass, and uploading chunks (in
parallel, paced by a hook) to a real site."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import random
import threading
from pathlib import Path

import pytest

from tain.client import SiteClient, decode_chunk_frames, encode_chunk_frames
from tain.core.chunking import chunk_bytes
from tain.push.progress import NullProgress
from tain.push.scan import FileChanged
from tain.push.upload import ChunkLocator, ChunkUploader, chunk_file, read_snapshot
from tests.conftest import RunningSite


def test_a_snapshot_has_the_cut_points_of_the_core_chunker(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(3_000_000)
    (tmp_path / "f").write_bytes(data)
    snap = chunk_file("f", tmp_path / "f")
    assert snap.sha256 == hashlib.sha256(data).hexdigest()
    assert list(snap.chunks) == chunk_bytes(data)
    assert snap.stamp.size == len(data)
    (tmp_path / "empty").write_bytes(b"")
    assert chunk_file("empty", tmp_path / "empty").chunks == ()


def test_a_snapshot_never_follows_a_symlink_or_reads_a_directory(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to("target")
    with pytest.raises(OSError):
        read_snapshot("link", tmp_path / "link")
    (tmp_path / "d").mkdir()
    with pytest.raises((FileChanged, OSError)):
        read_snapshot("d", tmp_path / "d")


def test_frames_round_trip() -> None:
    frames = [("ab" * 32, b"hello"), ("cd" * 32, b""), ("ef" * 32, os.urandom(70_000))]
    assert list(decode_chunk_frames(encode_chunk_frames(frames))) == frames


def test_parallel_upload_sends_every_chunk_once(
    tmp_path: Path, running_site: RunningSite
) -> None:
    data = random.Random(2).randbytes(6_000_000)
    (tmp_path / "f").write_bytes(data)
    snap = chunk_file("f", tmp_path / "f")
    locator = ChunkLocator()
    locator.add(snap)
    sizes: list[int] = []
    with SiteClient(running_site.url, running_site.token) as client:
        client.create_repo("up")
        uploader = ChunkUploader(client, "up", locator, NullProgress(), batch_bytes=1 << 20,
                                 workers=3, before_send=sizes.append)
        digests = [c.digest for c in snap.chunks]
        uploader.upload(digests)
        assert uploader.chunks_sent == len(set(digests)) and len(sizes) >= 3
        assert client.missing("up", chunks=digests).chunks == []
        uploader.upload(digests)  # already sent: nothing more
        assert uploader.chunks_sent == len(set(digests))


def test_chunk_uploads_use_as_many_requests_as_workers(
    tmp_path: Path, running_site: RunningSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--parallel`` is the number of chunk requests in flight (only the small-file
    stream is capped, at ``STREAM_WORKERS``): four requests must be able to meet."""
    (tmp_path / "f").write_bytes(random.Random(5).randbytes(6_000_000))
    snap = chunk_file("f", tmp_path / "f")
    locator = ChunkLocator()
    locator.add(snap)
    meet = threading.Barrier(4, timeout=10)
    with SiteClient(running_site.url, running_site.token) as client:
        client.create_repo("up")
        upload = client.upload_encoded
        calls = itertools.count()

        def together(repo: str, payload: bytes, **kw: bool) -> object:
            if next(calls) < 4:  # the first four wait for each other
                with contextlib.suppress(threading.BrokenBarrierError):
                    meet.wait()
            return upload(repo, payload, **kw)

        monkeypatch.setattr(client, "upload_encoded", together)
        uploader = ChunkUploader(client, "up", locator, NullProgress(), batch_bytes=1 << 20,
                                 workers=4)
        uploader.upload([c.digest for c in snap.chunks])
    assert not meet.broken  # four were in flight at once


def test_a_file_changed_since_it_was_chunked_is_not_uploaded(
    tmp_path: Path, running_site: RunningSite
) -> None:
    (tmp_path / "f").write_bytes(random.Random(3).randbytes(500_000))
    snap = chunk_file("f", tmp_path / "f")
    locator = ChunkLocator()
    locator.add(snap)
    (tmp_path / "f").write_bytes(random.Random(4).randbytes(500_000))
    with SiteClient(running_site.url, running_site.token) as client:
        client.create_repo("up")
        uploader = ChunkUploader(client, "up", locator, NullProgress(), workers=2)
        with pytest.raises(FileChanged):
            uploader.upload([c.digest for c in snap.chunks])
