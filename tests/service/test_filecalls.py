"""A push's per-file work (storing a request's small blobs, committing a revision and
publishing it) runs one thread at a time, under ``FILE_CALLS``: side by side the
threads would trade the GIL through the kernel on every file-system and SQLite call."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from tain.catalog.sql import open_catalog
from tain.config import load
from tain.core.manifest import Change, Entry, Kind
from tain.service import pushes
from tain.service.filecalls import FILE_CALLS
from tain.service.ingest import store_small_blobs
from tain.service.publish import Publisher
from tain.service.setup import create_site
from tain.service.site import open_site
from tain.store.base import ImmediateGroup
from tain.store.local import LocalStore
from tain.store.local_group import LocalBlobGroup
from tain.store.memory import MemoryStore


def test_small_blobs_are_written_and_new_files_linked_under_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: dict[str, list[bool]] = {"put": [], "link": []}
    put, link = LocalBlobGroup.put, os.link

    def noted_put(self: LocalBlobGroup, sha256: str, data: bytes) -> None:
        held["put"].append(FILE_CALLS.locked())
        put(self, sha256, data)

    def noted_link(*args: object, **kwargs: object) -> None:
        if threading.current_thread() is threading.main_thread():
            held["link"].append(FILE_CALLS.locked())
        link(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalBlobGroup, "put", noted_put)
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    store = LocalStore([tmp_path / "blobs"])
    catalog.create_repo("r", public=True, actor="t")
    publisher = Publisher(tmp_path / "published", catalog, store)
    for rev in range(3):  # the first two publishes build whole trees; the third applies a diff
        files = {f"d/f{rev}-{i}": f"{rev}-{i}".encode() for i in range(5)}
        blobs = {hashlib.sha256(d).hexdigest(): d for d in files.values()}
        assert store_small_blobs(catalog, store, blobs.items())[0] == 5
        catalog.commit("r", [Change("put", p, Entry(p, Kind.FILE, 0o644, 1, hashlib.sha256(
            d).hexdigest(), len(d))) for p, d in files.items()], author="t")
        monkeypatch.setattr(os, "link", noted_link)
        publisher.publish("r")
        monkeypatch.setattr(os, "link", link)
    assert held["put"] == [True] * 15
    assert held["link"] and all(held["link"][-10:])  # the diff's ten new files
    assert not FILE_CALLS.locked()
    catalog.close()


def test_blobs_for_a_store_across_the_network_are_put_in_parallel_without_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 (here its in-memory stand-in, the same ``ImmediateGroup``): each put waits on a
    round trip, so puts run on several threads and never hold ``FILE_CALLS``."""
    seen: list[tuple[str, bool]] = []
    put = ImmediateGroup.put

    def noted(self: ImmediateGroup, sha256: str, data: bytes) -> None:
        seen.append((threading.current_thread().name, FILE_CALLS.locked()))
        put(self, sha256, data)

    monkeypatch.setattr(ImmediateGroup, "put", noted)
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    store = MemoryStore()
    blobs = {hashlib.sha256(b"%d" % i).hexdigest(): b"%d" % i for i in range(40)}
    assert store_small_blobs(catalog, store, blobs.items()) == (40, sum(map(len, blobs.values())))
    assert catalog.known_blobs(blobs) == set(blobs) == store.has_blobs(blobs)
    assert not any(locked for _, locked in seen) and len(seen) == 40
    assert len({name for name, _ in seen}) > 1  # more than one thread
    catalog.close()


def test_a_commit_and_its_publish_and_a_requests_blobs_hold_the_lock_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_site(tmp_path, listen="127.0.0.1:1", admin="admin", env={})
    site = open_site(load(tmp_path))
    site.catalog.create_repo("r", public=True, actor="admin")
    held: list[tuple[str, bool]] = []
    for name in ("commit", "add_blobs"):
        real = getattr(site.catalog, name)

        def noted(*args: object, _name: str = name, _real: object = real,
                  **kwargs: object) -> object:
            held.append((_name, FILE_CALLS.locked()))
            return _real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(site.catalog, name, noted)
    publish = site.publisher.publish

    def noted_publish(repo: str, commit: object = None) -> int:
        held.append(("publish", FILE_CALLS.locked()))
        return publish(repo, commit)  # type: ignore[arg-type]

    monkeypatch.setattr(site.publisher, "publish", noted_publish)
    data = b"one small file"
    sha = hashlib.sha256(data).hexdigest()
    assert store_small_blobs(site.catalog, site.store, [(sha, data)]) == (1, len(data))
    pushes.commit(site, "r", [Change("put", "f", Entry("f", Kind.FILE, 0o644, 1, sha,
                                                        len(data)))], author="admin", message="")
    assert held == [("add_blobs", True), ("commit", True), ("publish", True)]
    assert not FILE_CALLS.locked()
    assert (tmp_path / "published" / "r" / "f").read_bytes() == data
    site.close()
