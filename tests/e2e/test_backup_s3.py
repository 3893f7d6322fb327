"""Backups in S3 (a real endpoint on loopback: moto's server): back up while a push runs,
wipe, restore from the bucket, every file at every revision byte-identical; a second
backup puts only new blobs; scheduled backups keep ``keep`` and drop blobs nothing
lists; a backup without a manifest is never used; failures are one line."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tain.client import SiteClient
from tain.config import load
from tain.core.chunking import chunk_bytes
from tain.core.manifest import Change, Entry, Kind
from tain.service.backup import last_backup_time, list_backups
from tain.service.backup_targets import ENDPOINT_ENV, open_target
from tain.service.scheduler import site_jobs
from tain.service.setup import create_site
from tain.service.site import Site, open_site
from tests.conftest import NewSite, free_port
from tests.e2e.protocol import push_files
from tests.e2e.test_backup_restore import (
    app,
    check_restored,
    everything,
    keep_pushing,
    push_history,
    tain,
)
from tests.ops import configure_disks, serving
from tests.s3 import MotoServer
from tests.service.test_backup_targets import s3_env


def bucket_keys(moto: MotoServer, bucket: str, prefix: str) -> list[str]:
    pages = moto.admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def blob_list(moto: MotoServer, bucket: str, backup: str) -> dict[str, int]:
    body = moto.admin.get_object(Bucket=bucket, Key=f"{backup}/blobs.txt")["Body"].read()
    return {sha: int(size) for sha, size in (line.split() for line in body.decode().split("\n")
                                             if line)}


def test_backup_to_s3_while_pushing_then_wipe_and_restore(
    new_site: NewSite, tmp_path: Path, moto: MotoServer, s3_bucket: str
) -> None:
    dest = f"s3://{s3_bucket}/backups/site1"
    env = s3_env(moto.endpoint)
    with serving(new_site.site_dir) as url:
        headers = {"Authorization": f"Bearer {new_site.token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            push_history(c, random.Random(1))
        stop, pushed = threading.Event(), []
        pusher = threading.Thread(target=keep_pushing, args=(url, new_site.token, stop, pushed))
        pusher.start()
        try:
            while not pushed:  # the push loop is under way
                threading.Event().wait(0.02)
            code, first, out = tain(env, "backup", str(new_site.site_dir), dest, "--json")
        finally:
            stop.set()
            pusher.join(60)
        assert code == 0, out
        head = first["repos"]["m"]
        assert head >= 6 and first["path"] == f"{dest}/{first['name']}"
        assert first["blobs_copied"] == first["blobs"] > 0
        files, revisions = everything(url, new_site.token, head)

        # a second backup (endpoint given as a flag) puts only the new blobs
        rng = random.Random(3)
        new = {f"new/{i}": rng.randbytes(10_000 + i) for i in range(3)}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            push_files(c, "m", {**new, "dir0/f0.txt": b"rewritten"})  # one old blob again
        flag_only = {k: v for k, v in env.items() if k != ENDPOINT_ENV}
        code, second, out = tain(flag_only, "backup", str(new_site.site_dir), dest,
                                 "--s3-endpoint-url", moto.endpoint, "--json")
        assert code == 0, out
    # exactly the blobs the first backup did not list (the new files, and what the
    # push loop added after the first snapshot) were put
    first_list = blob_list(moto, s3_bucket, f"backups/site1/{first['name']}")
    second_list = blob_list(moto, s3_bucket, f"backups/site1/{second['name']}")
    added = set(second_list) - set(first_list)
    assert {hashlib.sha256(d).hexdigest() for d in new.values()} <= added
    assert second["blobs_copied"] == len(added)
    assert second["bytes_copied"] == sum(second_list[sha] for sha in added)

    keys = bucket_keys(moto, s3_bucket, "backups/site1/")
    blob_keys = [k for k in keys if k.startswith("backups/site1/blobs/")]
    assert len(blob_keys) == len(set(first_list) | set(second_list))
    assert f"backups/site1/{first['name']}/manifest.json" in keys
    manifest = json.loads(moto.admin.get_object(
        Bucket=s3_bucket, Key=f"backups/site1/{first['name']}/manifest.json")["Body"].read())
    assert manifest["files"]["keys/signing.key"]["mode"] == 0o600

    shutil.rmtree(new_site.site_dir)  # the machine is gone

    restored = tmp_path / "restored"  # the newest backup, by its destination
    code, body, out = tain(env, "restore", dest, str(restored), "--json")
    assert code == 0, out
    assert body["blobs_missing"] == 0 and body["source"] == f"{dest}/{second['name']}"
    assert body["blobs_restored"] == second["blobs"] - second["blobs_dropped"]
    assert (restored / "keys" / "signing.key").stat().st_mode & 0o777 == 0o600
    with serving(restored) as url, SiteClient(url, new_site.token) as client:
        assert client.get_repo("m")["head"] == second["repos"]["m"]
    code, scrubbed, out = tain({}, "scrub", str(restored), "--json")
    assert code == 0 and scrubbed["problems_total"] == 0, out

    older = tmp_path / "older"  # one backup, by its own URL: the site as it was then
    code, body, out = tain(env, "restore", f"{dest}/{first['name']}", str(older), "--json")
    assert code == 0, out
    with serving(older) as url:
        check_restored(url, new_site.token, head, files, revisions)


@pytest.fixture
def s3_scheduled_site(
    tmp_path: Path, moto: MotoServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    """A site whose config asks for scheduled backups to S3, keeping two; the process
    environment (as ``tain serve`` has it) names the endpoint and the credentials."""
    for name, value in s3_env(moto.endpoint).items():
        monkeypatch.setenv(name, value)
    site_dir = tmp_path / "site"
    create_site(site_dir, listen=f"127.0.0.1:{free_port()}", admin="admin", env={})
    configure_disks(site_dir, 1, 1, backup=f'every = "1h"\ndest = "s3://{s3_bucket}/nightly"'
                                           "\nkeep = 2")
    site = open_site(load(site_dir, {}))
    site.catalog.create_repo("r", public=True, actor="t")
    yield site
    site.close()


def put(site: Site, path: str, data: bytes) -> str:
    with site.store.new_blob() as w:
        w.write(data)
        sha = w.commit()
    site.catalog.add_blob(sha, len(data), chunk_bytes(data))
    site.catalog.commit("r", [Change("put", path, Entry(path, Kind.FILE, 0o644, 1, sha,
                                                         len(data)))], author="t")
    return sha


def test_scheduled_backups_to_s3_keep_the_newest_and_drop_unused_blobs(
    s3_scheduled_site: Site, moto: MotoServer, s3_bucket: str
) -> None:
    site = s3_scheduled_site
    dest = f"s3://{s3_bucket}/nightly"
    (job,) = [j for j in site_jobs(site) if j.name == "backup"]  # as tain serve runs it
    assert job.last_run() is None
    code, manual, out = tain({}, "backup", str(site.config.site_dir), dest, "--json")
    assert code == 0, out
    # a backup a crash left without its manifest: never listed, deleted by the next one
    moto.admin.put_object(Bucket=s3_bucket, Key="nightly/20000101T000000Z/catalog.sqlite3",
                          Body=b"half")
    site.catalog.update_repo("r", actor="t", keep_last=1)
    shas = []
    for i in range(4):
        shas.append(put(site, f"f{i}", f"version {i}".encode() * 100))
        job.run(threading.Event())
        # f{i} goes away for good: deleted, retention drops it, gc forgets its blob
        site.catalog.commit("r", [Change("delete", f"f{i}")], author="t")
        site.catalog.apply_retention("r", actor="t")
        assert site.catalog.forget_blobs([shas[-1]]) == [shas[-1]]
        site.store.delete(shas[-1])

    with closing(open_target(dest, s3_env(moto.endpoint))) as target:
        kept = list_backups(target)
    assert [b.scheduled for b in kept] == [False, True, True]
    assert kept[0].name == manual["name"]
    assert job.last_run() == last_backup_time(dest) == kept[-1].created_at
    keys = bucket_keys(moto, s3_bucket, "nightly/")
    assert {k.split("/")[1] for k in keys} == {"blobs", *(b.name for b in kept)}
    stored = {k.rpartition("/")[2] for k in keys if k.startswith("nightly/blobs/")}
    listed = {sha for b in kept for sha in blob_list(moto, s3_bucket, f"nightly/{b.name}")}
    assert stored == listed  # blobs only pruned backups named are gone
    assert shas[0] not in stored and shas[1] not in stored and shas[3] in stored
    prunes = site.catalog.audit_entries(action="backup.prune", limit=10)
    assert [e.details["removed"] for e in prunes][-1] and prunes[-1].target == dest


def test_s3_failures_are_one_line(
    new_site: NewSite, moto: MotoServer, s3_bucket: str, tmp_path: Path
) -> None:
    site_dir = str(new_site.site_dir)
    env = s3_env(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    for args, code, says in [
        (("backup", site_dir, f"s3://{s3_bucket}/p"), 7, "cannot reach S3 endpoint"),
        (("restore", f"s3://{s3_bucket}/p", str(tmp_path / "r")), 7, "cannot reach S3"),
        (("backup", site_dir, "s3://"), 2, "names no bucket"),
        (("backup", site_dir, "s3:///p"), 2, "names no bucket"),
    ]:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    env = s3_env(moto.endpoint)
    result = CliRunner().invoke(app, ["restore", f"s3://{s3_bucket}/empty",
                                      str(tmp_path / "r")], env=env)
    assert result.exit_code == 4 and "no complete backup in" in result.stderr
    result = CliRunner().invoke(app, ["backup", site_dir, "s3://no-such-bucket-x/p"], env=env)
    assert result.exit_code == 7 and "does not exist" in result.stderr
