"""Backup → wipe → restore → identical: a site backed up while a push runs is restored
into a new directory (and database), serves every file at every revision byte for
byte, keeps its audit chain and signatures, and scrubs clean. On SQLite and PostgreSQL
catalogs; a PostgreSQL backup also restores into SQLite."""

from __future__ import annotations

import json
import random
import shutil
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from tain.client import SiteClient
from tests.conftest import BOTH_CATALOGS, NewSite
from tests.e2e.protocol import push_files
from tests.ops import ops_app, serving
from tests.pg import fresh_pg_database

runner = CliRunner()
app = ops_app()

Files = dict[tuple[int, str], bytes]


def tain(env: dict[str, str], *args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, list(args), env={"TAIN_DEBUG": "", **env})
    body = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result.exit_code, body, result.output


def push_history(c: httpx.Client, rng: random.Random) -> None:
    """Five revisions: adds, rewrites, deletes, a big file, an empty one."""
    c.post("/api/v1/repos", json={"name": "m"}).raise_for_status()
    files = {f"dir{i % 3}/f{i}.txt": rng.randbytes(rng.randint(0, 50_000)) for i in range(25)}
    push_files(c, "m", files, message="first")
    push_files(c, "m", {"dir0/f0.txt": b"rewritten", "big.bin": rng.randbytes(2_000_000)})
    push_files(c, "m", {"empty": b""}, deletes=("dir1",))
    push_files(c, "m", {"dir2/f2.txt": rng.randbytes(70_000)}, deletes=("big.bin",))
    push_files(c, "m", {"big.bin": rng.randbytes(1_000_000)})


def keep_pushing(url: str, token: str, stop: threading.Event, pushed: list[int]) -> None:
    rng = random.Random(99)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        while not stop.is_set():
            body, _ = push_files(c, "m", {f"live/{len(pushed)}.bin": rng.randbytes(200_000)})
            pushed.append(body["revision"]["number"])


def everything(url: str, token: str, head: int) -> tuple[Files, dict[int, Any]]:
    """Every file's bytes at every revision up to ``head``, and each revision's record."""
    files: Files = {}
    revisions: dict[int, Any] = {}
    with SiteClient(url, token) as client, httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        for rev in range(1, head + 1):
            revisions[rev] = client.revision("m", rev)
            for entry in client.iter_tree("m", rev=rev):
                if entry.kind == "file":
                    r = c.get(f"/m/{entry.path}", params={"rev": rev})
                    r.raise_for_status()
                    files[(rev, entry.path)] = r.content
    return files, revisions


def check_restored(url: str, token: str, head: int, files: Files, revisions: dict[int, Any],
                   ) -> None:
    with SiteClient(url, token) as client:
        assert client.get_repo("m")["head"] == head
        verify = client.audit_verify()
        assert verify["ok"], verify
        assert [e["action"] for e in client.audit(action="restore")] == ["restore"]
    restored, restored_revisions = everything(url, token, head)
    assert restored.keys() == files.keys()
    for key, data in files.items():
        assert restored[key] == data, key  # byte-identical at the same revision
    assert restored_revisions == revisions  # same digests, same signatures


@BOTH_CATALOGS
def test_backup_while_pushing_then_wipe_and_restore(
    new_site: NewSite, tmp_path: Path
) -> None:
    env = new_site.env
    dest = tmp_path / "backups"
    with serving(new_site.site_dir, env) as url:
        headers = {"Authorization": f"Bearer {new_site.token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            push_history(c, random.Random(1))
        stop, pushed = threading.Event(), []
        pusher = threading.Thread(target=keep_pushing, args=(url, new_site.token, stop, pushed))
        pusher.start()
        try:
            while not pushed:  # the push loop is under way
                threading.Event().wait(0.02)
            code, report, out = tain(env, "backup", str(new_site.site_dir), str(dest), "--json")
        finally:
            stop.set()
            pusher.join(60)
        assert code == 0, out
        head = report["repos"]["m"]
        assert head >= 6
        assert report["blobs_copied"] == report["blobs"] > 0
        files, revisions = everything(url, new_site.token, head)

    shutil.rmtree(new_site.site_dir)  # the machine is gone

    with fresh_pg_database() if env else nullcontext("") as target_url:
        target_env = {"TAIN_DATABASE_URL": target_url} if target_url else {}
        restored_dir = tmp_path / "restored"
        code, body, out = tain(target_env, "restore", str(dest), str(restored_dir), "--json")
        assert code == 0, out
        assert body["blobs_missing"] == 0 and body["catalog"] == report["catalog"]
        with serving(restored_dir, target_env) as url:
            check_restored(url, new_site.token, head, files, revisions)
        code, scrubbed, out = tain(target_env, "scrub", str(restored_dir), "--json")
        assert code == 0 and scrubbed["problems_total"] == 0, out
        assert scrubbed["blobs_checked"] == report["blobs"] - report["blobs_dropped"]

    if env:  # a PostgreSQL backup restores into SQLite as well
        into_sqlite = tmp_path / "into-sqlite"
        code, body, out = tain({}, "restore", str(dest), str(into_sqlite), "--json")
        assert code == 0, out
        with serving(into_sqlite) as url:
            check_restored(url, new_site.token, head, files, revisions)


def test_second_backup_copies_only_new_blobs(new_site: NewSite, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    site_dir = str(new_site.site_dir)
    with serving(new_site.site_dir) as url:
        headers = {"Authorization": f"Bearer {new_site.token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            push_history(c, random.Random(2))
            code, first, out = tain({}, "backup", site_dir, str(dest), "--json")
            assert code == 0, out
            rng = random.Random(3)
            new = {f"new/{i}": rng.randbytes(10_000 + i) for i in range(3)}
            push_files(c, "m", {**new, "dir0/f0.txt": b"rewritten"})  # one old blob again
            code, second, out = tain({}, "backup", site_dir, str(dest), "--json")
            assert code == 0, out
            code, third, out = tain({}, "backup", site_dir, str(dest), "--no-blobs", "--json")
            assert code == 0, out
    assert second["blobs_copied"] == 3
    assert second["bytes_copied"] == sum(len(d) for d in new.values())
    assert second["blobs"] == first["blobs"] + 3
    assert not third["blobs_included"] and third["blobs_copied"] == 0
    names = sorted(p.name for p in dest.iterdir() if not p.name.startswith("."))
    assert names == sorted(["blobs", first["name"], second["name"], third["name"]])

    # restoring the first backup gives the site as it was then
    restored = tmp_path / "restored"
    code, _, out = tain({}, "restore", str(dest / first["name"]), str(restored))
    assert code == 0, out
    with serving(restored) as url, SiteClient(url, new_site.token) as client:
        assert client.get_repo("m")["head"] == first["repos"]["m"]

    # a damaged backup file is refused before anything is written
    (dest / second["name"] / "tain.toml").write_text("# edited\n")
    code, _, out = tain({}, "restore", str(dest / second["name"]), str(tmp_path / "x"))
    assert code == 6 and "does not match its manifest" in out
    assert not (tmp_path / "x").exists()
