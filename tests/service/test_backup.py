"""Backup destinations and retention: directories and s3:// URLs, scheduled backups
pruned to ``keep`` (manual ones stay), and blobs no remaining backup names deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tain.config import load
from tain.core.chunking import chunk_bytes
from tain.core.manifest import Change, Entry, Kind
from tain.errors import UsageError
from tain.service.backup import (
    BLOB_LIST,
    backup,
    find_backup,
    last_backup_time,
    list_backups,
    prune_backups,
)
from tain.service.backup_targets import DirectoryTarget, resolve_dest
from tain.service.setup import create_site
from tain.service.site import Site, open_site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site_dir = tmp_path / "site"
    create_site(site_dir, listen="127.0.0.1:1", admin="admin", env={})
    opened = open_site(load(site_dir, {}))
    opened.catalog.create_repo("r", public=True, actor="t")
    yield opened
    opened.close()


def put(site: Site, path: str, data: bytes) -> str:
    with site.store.new_blob() as w:
        w.write(data)
        sha = w.commit()
    site.catalog.add_blob(sha, len(data), chunk_bytes(data))
    site.catalog.commit("r", [Change("put", path, Entry(path, Kind.FILE, 0o644, 1, sha,
                                                         len(data)))], author="t")
    return sha


def test_destinations_are_directories_or_s3_urls(tmp_path: Path) -> None:
    assert resolve_dest("backups", base=tmp_path) == str(tmp_path / "backups")
    assert resolve_dest(tmp_path / "abs") == str(tmp_path / "abs")
    assert resolve_dest("s3://bucket//a/b/") == "s3://bucket/a/b"
    assert resolve_dest("s3://bucket") == resolve_dest("s3://bucket/") == "s3://bucket"
    for bad, why in [("s3://", "names no bucket"), ("s3:///prefix", "names no bucket"),
                     ("s3://Bad_Bucket!/p", "not an S3 bucket name"),
                     ("s3://bucket/../p", "plain"), ("gs://bucket/p", "directory or to s3"),
                     (Path("s3://bucket/p"), "directory or to s3")]:
        with pytest.raises(UsageError, match=why):
            resolve_dest(bad)


def test_prune_keeps_the_newest_scheduled_and_every_manual_backup(
    site: Site, tmp_path: Path
) -> None:
    dest = DirectoryTarget(tmp_path / "dest")
    shas = []
    manual = backup(site, dest)  # manual: never pruned
    site.catalog.update_repo("r", actor="t", keep_last=1)
    for i in range(4):
        shas.append(put(site, f"f{i}", f"version {i}".encode() * 100))
        backup(site, dest, scheduled=True)
        # f{i} goes away for good: deleted, retention drops it, gc forgets its blob
        site.catalog.commit("r", [Change("delete", f"f{i}")], author="t")
        site.catalog.apply_retention("r", actor="t")
        assert site.catalog.forget_blobs([shas[-1]]) == [shas[-1]]
        site.store.delete(shas[-1])
    assert list_backups(dest)[0].name == manual.name
    removed = prune_backups(dest, keep=2)
    kept = list_backups(dest)
    assert len(removed) == 2 and len(kept) == 3
    assert kept[0].name == manual.name
    assert last_backup_time(dest.location) == kept[-1].created_at
    assert find_backup(dest) == kept[-1].name
    stored = {p.name for p in (dest.root / "blobs").rglob("*") if p.is_file()}
    listed = {line.split()[0] for b in kept
              for line in (dest.root / b.name / BLOB_LIST).read_text().splitlines()}
    assert stored == listed  # blobs only pruned backups named are gone
    assert shas[0] not in stored and shas[3] in stored
    manifest = json.loads((dest.root / kept[-1].name / "manifest.json").read_text())
    assert manifest["scheduled"] and manifest["catalog"]["kind"] == "sqlite"
    assert set(manifest["files"]) == {"catalog.sqlite3", "tain.toml", "keys/signing.key",
                                      BLOB_LIST}  # a self-contained SQLite file
