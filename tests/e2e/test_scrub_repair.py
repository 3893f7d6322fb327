"""Redundancy end to end: a served site with three data dirs and two copies loses a whole
data dir and gets a rotten blob in another; downloads stay right, ``tain scrub``
repairs everything back to two copies, rotates over fractions, and brings back a blob
with no good local copy from another site."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tain.service.setup import create_site
from tests.e2e.protocol import push_files
from tests.ops import blob_copies, configure_disks, good_copies, ops_app, rot, serving

runner = CliRunner()
app = ops_app()


def make_site(root: Path, name: str, **sections: str) -> tuple[Path, str, list[Path]]:
    site_dir = root / name
    token = create_site(site_dir, listen="127.0.0.1:1", admin="admin", env={})
    dirs = configure_disks(site_dir, disks=3, copies=2, **sections)
    return site_dir, token, dirs


def tain(*args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, list(args), env={"TAIN_DEBUG": ""})
    body = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result.exit_code, body, result.output


def files_for(seed: int, count: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"d{i % 4}/f{i}.bin": rng.randbytes(rng.randint(0, 300_000)) for i in range(count)}
    files["big.iso"] = rng.randbytes(3_000_000)
    return files


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_downloads(url: str, token: str, files: dict[str, bytes]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        for path, data in files.items():
            r = c.get(f"/m/{path}")
            assert r.status_code == 200, (path, r.text[:200])
            assert sha(r.content) == sha(data) == r.headers["etag"].strip('"'), path


def test_lost_dir_and_rotten_blob_are_repaired_to_k_copies(tmp_path: Path) -> None:
    site_dir, token, dirs = make_site(tmp_path, "site")
    d0, d1, d2 = dirs
    files = files_for(1, 40)
    with serving(site_dir) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            c.post("/api/v1/repos", json={"name": "m"}).raise_for_status()
            push_files(c, "m", files)
        blobs = {sha(d) for d in files.values()}
        assert all(len(blob_copies(dirs, s)) == 2 for s in blobs)

        shutil.rmtree(d0)  # a disk is gone
        # a blob whose two copies survive, and whose published file shares one copy's
        # inode: that copy rots in place
        published = site_dir / "published" / "m"
        victim_path = next(
            p for p, d in files.items()
            if len(blob_copies([d1, d2], sha(d))) == 2 and d
        )
        victim = sha(files[victim_path])
        inode = (published / victim_path).stat().st_ino
        shared = [p for p in blob_copies([d1, d2], victim) if p.stat().st_ino == inode]
        rot((shared or blob_copies([d1, d2], victim))[0], 100)

    # Rot in place changes no file metadata, so the serving process, which hashed the
    # blob when it was committed, cannot tell (the scrub can). A site started anew
    # hashes each blob on its first read: it never serves the rotten bytes.
    with serving(site_dir) as url:
        check_downloads(url, token, files)  # never wrong bytes, even now

        code, report, out = tain("scrub", str(site_dir), "--json")
        assert code == 0, out
        assert report["ok"] and report["complete"]
        assert report["blobs_checked"] == len(blobs)
        assert report["repaired"] == report["problems_total"] > 0
        for s in blobs:
            assert len(good_copies(dirs, s)) == 2, s
        check_downloads(url, token, files)
        for path, data in files.items():  # the published tree is right too
            assert sha((published / path).read_bytes()) == sha(data), path

        code, report, out = tain("scrub", str(site_dir), "--json")
        assert code == 0 and report["problems_total"] == 0, out

        # four runs of a quarter read every blob once
        checked = 0
        for _ in range(4):
            code, report, out = tain("scrub", str(site_dir), "--fraction", "0.25", "--json")
            assert code == 0, out
            checked += report["blobs_checked"]
        assert checked == len(blobs)

        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            entries = c.get("/api/v1/audit", params={"action": "scrub"}).json()["entries"]
        assert len(entries) == 6
        assert entries[0]["details"]["repaired"] > 0 and entries[0]["actor"] == "tain-scrub"


def test_a_blob_with_no_good_copy_comes_back_from_another_site(tmp_path: Path) -> None:
    files = files_for(2, 12)
    primary, token, dirs = make_site(tmp_path, "primary")
    mirror, mirror_token, _ = make_site(tmp_path, "mirror")
    with serving(mirror) as mirror_url:
        with serving(primary) as url:
            for site_url, site_token in ((url, token), (mirror_url, mirror_token)):
                headers = {"Authorization": f"Bearer {site_token}"}
                with httpx.Client(base_url=site_url, headers=headers) as c:
                    c.post("/api/v1/repos", json={"name": "m"}).raise_for_status()
                    push_files(c, "m", files)  # same revisions on both sites
        lost = sha(files["big.iso"])
        for path in blob_copies(dirs, lost):
            rot(path, 5)
        run_primary_and_recover(primary, token, mirror_url, mirror_token, dirs, files)


def run_primary_and_recover(
    primary: Path, token: str, mirror_url: str, mirror_token: str, dirs: list[Path],
    files: dict[str, bytes],
) -> None:
    """The primary started anew (its first read of each blob hashes it): the rotten
    blob is refused, scrubbed, and repaired from the mirror."""
    lost = sha(files["big.iso"])
    with serving(primary) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.get("/m/big.iso")
            assert r.status_code == 500 and r.json()["error"] == "integrity"

        code, report, out = tain("scrub", str(primary), "--json")
        assert code == 6, out
        assert report["unrepaired"] == 1 and report["problems"][0]["lost"]
        assert "--repair-from" in out

        code, report, out = tain("scrub", str(primary), "--repair-from", mirror_url,
                                 "--repair-token", mirror_token, "--json")
        assert code == 0, out
        assert report["repaired"] == 1
        assert mirror_url in report["problems"][0]["source"]
        assert len(good_copies(dirs, lost)) == 2
        check_downloads(url, token, files)


def test_scheduled_scrubs_and_backups_run_while_serving(tmp_path: Path) -> None:
    site_dir, token, dirs = make_site(
        tmp_path, "site", scrub='every = "1s"\nfraction = 0.5',
        backup='every = "1s"\ndest = "backups"\nkeep = 2\nblobs = true',
    )
    files = files_for(3, 6)
    with serving(site_dir) as url:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers) as c:
            c.post("/api/v1/repos", json={"name": "m"}).raise_for_status()
            push_files(c, "m", files)
            rot(blob_copies(dirs, sha(files["big.iso"]))[0])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                scrubs = c.get("/api/v1/audit", params={"action": "scrub"}).json()["entries"]
                prunes = c.get("/api/v1/audit",
                               params={"action": "backup.prune"}).json()["entries"]
                if prunes and len(scrubs) >= 3:
                    break
                time.sleep(0.2)
            else:
                pytest.fail("the scheduled jobs did not run")
    assert {e["actor"] for e in scrubs} == {"scheduler"}
    # repaired by a scrub, or by a backup's read that skipped the rotten copy
    assert len(good_copies(dirs, sha(files["big.iso"]))) == 2
    backups = [p for p in (site_dir / "backups").iterdir() if not p.name.startswith(".")]
    assert "blobs" in {p.name for p in backups}
    assert len(backups) - 1 <= 2  # keep = 2 (the server stopped between jobs)
