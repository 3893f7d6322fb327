"""Small files go to the site whole, as blobs: which files count as small, the bytes kept
from the read, streaming them while others are read, and ``tain push`` using it."""

from __future__ import annotations

import hashlib
import io
import os
import random
import time
from pathlib import Path

import pytest

from tain.client import SiteClient
from tain.core.chunking import MIN_CHUNK, chunk_bytes
from tain.errors import RemoteError
from tain.push.pusher import push_directory
from tain.push.scan import FileChanged
from tain.push.snapshot import RACY_NS, FileChunks
from tain.push.upload import SmallFileStream, chunk_file, read_snapshot, split_small
from tests.conftest import RunningSite


def _write(root: Path, name: str, size: int, seed: int = 0) -> bytes:
    data = random.Random(f"{name}{seed}").randbytes(size)
    (root / name).write_bytes(data)
    return data


def _snap(root: Path, name: str, *, keep: bool = True) -> FileChunks:
    """A snapshot of a file written just now (read as if the racy window had passed)."""
    return read_snapshot(name, root / name, keep_small=keep,
                         now_ns=lambda: time.time_ns() + 2 * RACY_NS)


def test_only_one_chunk_files_up_to_min_chunk_are_small(tmp_path: Path) -> None:
    for name, size in (("tiny", 10), ("edge", MIN_CHUNK), ("over", MIN_CHUNK + 1),
                       ("big", 3 * MIN_CHUNK * 8), ("empty", 0)):
        _write(tmp_path, name, size)
    snaps = {n: chunk_file(n, tmp_path / n) for n in ("tiny", "edge", "over", "big", "empty")}
    with SiteClient("http://127.0.0.1:9") as client:  # never asked: only its flag is read
        small, rest = split_small(snaps.values(), client)
        assert {s.path for s in small} == {"tiny", "edge"}
        assert {s.path for s in rest} == {"over", "big", "empty"}
        client.blob_uploads = False  # a site without whole-file uploads: all as chunks
        assert split_small(snaps.values(), client) == ([], list(snaps.values()))


def test_files_read_without_the_cutter_get_the_cutters_chunks(tmp_path: Path) -> None:
    for name, size in (("empty", 0), ("one", 1), ("edge", MIN_CHUNK), ("over", MIN_CHUNK + 1)):
        data = _write(tmp_path, name, size)
        snap = _snap(tmp_path, name)
        assert list(snap.chunks) == chunk_bytes(data), name
        assert snap.sha256 == hashlib.sha256(data).hexdigest()
        assert snap.stamp.size == size
        assert snap.data == (data if 0 < size <= MIN_CHUNK else None), name


def test_a_small_file_that_grows_while_read_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "f", 100)
    real_read = os.read

    def growing(fd: int, n: int) -> bytes:
        with open(tmp_path / "f", "ab") as fh:
            fh.write(b"x" * MIN_CHUNK)  # a writer appends between open and read
        monkeypatch.setattr(os, "read", real_read)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", growing)
    with pytest.raises(FileChanged):
        _snap(tmp_path, "f")


def test_keep_small_keeps_exactly_the_bytes_that_were_hashed(tmp_path: Path) -> None:
    data = _write(tmp_path, "f", 5000)
    _write(tmp_path, "big", 3 * MIN_CHUNK * 8)
    kept = _snap(tmp_path, "f")
    assert kept.data == data and kept.sha256 == hashlib.sha256(data).hexdigest()
    assert _snap(tmp_path, "f", keep=False).data is None  # only when asked
    assert _snap(tmp_path, "big").data is None


def test_stream_sends_only_what_the_site_lacks_and_counts_it(
    tmp_path: Path, running_site: RunningSite
) -> None:
    datas = [_write(tmp_path, f"f{i}", 100 + i) for i in range(300)]
    _write(tmp_path, "big", 200_000)
    snaps = [_snap(tmp_path, f"f{i}") for i in range(300)]
    sizes: list[int] = []
    with SiteClient(running_site.url, running_site.token) as client:
        client.create_repo("st")
        client.upload_blobs("st", [(snaps[0].sha256, datas[0])])  # held already
        with SmallFileStream(client, "st", workers=2, before_send=sizes.append) as stream:
            assert not stream.add(chunk_file("big", tmp_path / "big"))  # not small
            assert not stream.add(chunk_file("f1", tmp_path / "f1"))  # bytes not kept
            for snap in snaps:
                assert stream.add(snap)
            stream.finish()
        assert stream.files_sent == 299
        assert len(sizes) == 2  # 256 files a request
        assert stream.on_site == {s.sha256 for s in snaps}  # the one held and those sent
        held = client.missing("st", blobs=[s.sha256 for s in snaps]).blobs
    assert held == []


def test_a_stream_asks_what_the_site_lacks_only_while_that_pays(
    tmp_path: Path, running_site: RunningSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    snaps = []
    for i in range(3 * 256):
        _write(tmp_path, f"f{i}", 100 + i)
        snaps.append(_snap(tmp_path, f"f{i}"))
    with SiteClient(running_site.url, running_site.token) as client:
        client.create_repo("st")
        held = snaps[300:310]  # in the second batch of 256
        client.upload_blobs("st", [(s.sha256, s.data or b"") for s in held])
        asked: list[int] = []
        missing = client.missing

        def counted(repo: str, **kinds: list[str]) -> object:
            asked.append(len(kinds.get("blobs") or ()))
            return missing(repo, **kinds)

        monkeypatch.setattr(client, "missing", counted)
        with SmallFileStream(client, "st", workers=1) as stream:
            for snap in snaps:
                stream.add(snap)
            stream.finish()
        # the first batch is wholly new, so the second goes unasked; the site already
        # had 10 of its files, so the third is asked about again
        assert asked == [256, 256]
        assert stream.files_sent == 3 * 256 - 10
        assert stream.on_site == {s.sha256 for s in snaps}
        assert not stream.ask  # the third batch, asked about, was wholly new
        assert client.missing("st", blobs=[s.sha256 for s in snaps]).blobs == []
        fresh = [_write(tmp_path, f"g{i}", 50 + i) for i in range(10)]
        asked.clear()
        with SmallFileStream(client, "st", workers=1, ask=False) as stream:  # as one after
            for i in range(10):                                           # a new batch
                stream.add(_snap(tmp_path, f"g{i}"))
            stream.finish()
        assert asked == [] and stream.files_sent == len(fresh)


def test_a_stream_to_a_site_that_is_gone_fails_on_finish(tmp_path: Path) -> None:
    _write(tmp_path, "f", 100)
    snap = _snap(tmp_path, "f")
    with SiteClient("http://127.0.0.1:9", "t", retries=0) as client, \
            SmallFileStream(client, "r", workers=1) as stream:
        stream.add(snap)
        with pytest.raises(RemoteError):
            stream.finish()


def test_push_sends_small_files_whole_and_stages_no_chunk_for_them(
    tmp_path: Path, running_site: RunningSite
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    small = {f"s{i}.txt": _write(src, f"s{i}.txt", 1000 + i) for i in range(50)}
    big = _write(src, "big.bin", 3 * MIN_CHUNK * 8)
    with SiteClient(running_site.url, running_site.token) as client:
        client.create_repo("p")
        result = push_directory(client, "p", src, message="first",
                                cache_path=tmp_path / "cache")
        assert result.added == 51
        for name, data in {**small, "big.bin": big}.items():
            out = io.BytesIO()
            client.download_to("p", name, out)
            assert out.getvalue() == data
    staged = running_site.site_dir / "blobs" / "chunks"
    names = {p.name for p in staged.rglob("*") if p.is_file()}
    assert names  # the large file's chunks were staged
    assert not names & {chunk_file(n, src / n).chunks[0].digest for n in small}


def test_an_older_site_without_blob_uploads_gets_chunks(
    tmp_path: Path, site_without_blobs: RunningSite
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    small = {f"s{i}.txt": _write(src, f"s{i}.txt", 500 + i) for i in range(20)}
    with SiteClient(site_without_blobs.url, site_without_blobs.token) as client:
        client.create_repo("old")
        with SmallFileStream(client, "old", workers=1) as stream:
            stream.add(_snap(src, "s0.txt"))
            stream.finish()  # no failure: the file stays lacking, for the chunk path
        assert not client.blob_uploads and stream.files_sent == 0
        assert not stream.add(_snap(src, "s1.txt"))  # not offered again
    with SiteClient(site_without_blobs.url, site_without_blobs.token) as client:
        result = push_directory(client, "old", src, message="to an older site",
                                cache_path=tmp_path / "cache")
        assert result.added == 20 and not client.blob_uploads
        for name, data in small.items():
            out = io.BytesIO()
            client.download_to("old", name, out)
            assert out.getvalue() == data
