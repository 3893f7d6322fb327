"""``tain status`` against a real site: repositories, disks, last scrub and backup,
schedules; JSON for scripts, and site admins only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from tain.service.setup import create_site
from tests.e2e.protocol import push_files
from tests.ops import configure_disks, ops_app, serving

runner = CliRunner()
app = ops_app()


def tain(url: str, token: str, *args: str) -> tuple[int, str]:
    env = {"TAIN_SITE": url, "TAIN_TOKEN": token, "TAIN_DEBUG": ""}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_status_shows_repos_disks_scrub_backup_and_schedules(tmp_path: Path) -> None:
    site_dir = tmp_path / "site"
    token = create_site(site_dir, listen="127.0.0.1:1", admin="admin", env={})
    dirs = configure_disks(site_dir, disks=2, copies=2,
                           scrub='every = "6h"\nfraction = 0.25\nrate_limit = "50M"',
                           backup='every = "1d"\ndest = "/nonexistent/backups"\nkeep = 3')
    with serving(site_dir) as url:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers) as c:
            c.post("/api/v1/repos", json={"name": "docs"}).raise_for_status()
            push_files(c, "docs", {"a.txt": b"alpha", "b/c.txt": b"gamma" * 100})
            c.post("/api/v1/users", json={"name": "bob"}).raise_for_status()
            bob = c.post("/api/v1/tokens", json={"user": "bob"}).json()["token"]

        code, out = tain(url, token, "status", "--json")
        assert code == 0, out
        body: dict[str, Any] = json.loads(out)
        assert body["repos"] == [{"name": "docs", "head": 1, "oldest_kept": 1, "files": 2,
                                  "bytes": 505, "public": False}]
        assert body["store"]["blobs"] == 2 and body["store"]["copies"] == 2
        assert [d["path"] for d in body["store"]["data_dirs"]] == [str(d) for d in dirs]
        assert all(d["available"] and d["free_bytes"] > 0 for d in body["store"]["data_dirs"])
        assert body["last_scrub"] is None and body["last_backup"] is None
        assert body["schedules"]["scrub"]["every_seconds"] == 6 * 3600
        assert body["schedules"]["scrub"]["rate_limit_bytes"] == 50 * 1024 * 1024
        assert body["schedules"]["backup"]["keep"] == 3

        code, out = tain(url, token, "scrub", str(site_dir), "--fraction", "1")
        assert code == 0 and "no problems" in out, out
        code, out = tain(url, token, "backup", str(site_dir), str(tmp_path / "bk"))
        assert code == 0, out
        shutil.rmtree(dirs[1])

        code, out = tain(url, token, "status", "--json")
        body = json.loads(out)
        assert body["last_scrub"]["ok"] and body["last_scrub"]["blobs_checked"] == 2
        assert body["last_scrub"]["actor"] == "tain-scrub"
        assert body["last_backup"]["blobs"] == 2
        assert body["last_backup"]["path"].startswith(str(tmp_path / "bk"))
        assert body["schedules"]["scrub"]["next_due"] == (
            body["schedules"]["scrub"]["last_run"] + 6 * 3600
        )
        assert [d["available"] for d in body["store"]["data_dirs"]] == [True, False]

        code, out = tain(url, token, "status")
        assert code == 0, out
        for text in ("docs", "UNAVAILABLE", "last scrub:", "every 6h", "fraction 0.25",
                     "50.0 MiB/s", "every 1d", "keep 3", "gc grace:    1h"):
            assert text in out, (text, out)

        code, out = tain(url, bob, "status")
        assert code == 3, out
        assert out.strip().startswith("error:")
