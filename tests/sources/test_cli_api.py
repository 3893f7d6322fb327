"""``tain source`` and ``/api/v1/sources`` against a served site with a real nginx
upstream: add, run-now, list, show (with the run log), pause, resume, remove, status;
bad input is one line with its exit code; only site admins may manage jobs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tain.cli.main import app
from tain.config import CONFIG_NAME
from tain.service.setup import create_site
from tests.conftest import free_port
from tests.ops import serving
from tests.sources.upstreams import nginx, wait_for, write_tree

runner = CliRunner()
HOOKED_JOB = ('[[sources.jobs]]\nname = "cfg"\nrepo = "mirror"\nkind = "http"\n'
              'url = "{base}/pub/"\ncron = "0 0 1 1 *"\n'
              'on_success = "echo $TAIN_SOURCE_NAME $TAIN_SOURCE_STATE '
              'rev=$TAIN_SOURCE_REVISION > {marker}"\n')


def tain(url: str, token: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"TAIN_SITE": url, "TAIN_TOKEN": token,
                                                 "TAIN_DEBUG": ""})
    return result.exit_code, result.output


def test_source_commands_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "www"
    write_tree(root, {"a.txt": b"alpha", "d/b.txt": b"beta"})
    site_dir = tmp_path / "site"
    token = create_site(site_dir, listen="127.0.0.1:1", admin="admin", env={})
    marker = tmp_path / "hook.out"
    with nginx(tmp_path, root) as base:
        with (site_dir / CONFIG_NAME).open("a") as f:
            f.write("\n[sources]\npoll_seconds = 0.2\n\n"
                    + HOOKED_JOB.format(base=base, marker=marker))
        with serving(site_dir) as url:
            assert tain(url, token, "repo", "create", "mirror")[0] == 0
            _bad_input(url, token, base)

            code, out = tain(url, token, "source", "add", "web", "--repo", "mirror",
                             "--http", f"{base}/pub/", "--every", "1h", "--json")
            assert code == 0, out
            assert json.loads(out)["schedule"] == "every 3600 s"

            def state(name: str) -> str:
                shown = json.loads(tain(url, token, "source", "show", name, "--json")[1])
                return str(shown["state"])

            wait_for(lambda: state("web") == "success", what="the first run")
            code, out = tain(url, token, "source", "list", "--json")
            jobs = {j["name"]: j for j in json.loads(out)}
            assert jobs["web"]["repo_files"] == 2 and jobs["web"]["repo_bytes"] == 9
            assert jobs["web"]["last_revision"] == 1 and jobs["cfg"]["from_config"]

            code, out = tain(url, token, "source", "show", "web", "--log")
            assert code == 0 and "committed revision 1" in out

            assert tain(url, token, "source", "pause", "web")[0] == 0
            assert state("web") == "paused"
            assert tain(url, token, "source", "resume", "web")[0] == 0

            code, out = tain(url, token, "source", "run-now", "cfg", "--wait")
            assert code == 0 and re.search(r"run \d+ success, revision unchanged", out), out
            assert state("cfg") == "success"
            assert marker.read_text().split() == ["cfg", "success", "rev="]  # no change

            code, out = tain(url, token, "status", "--json")
            assert {s["name"] for s in json.loads(out)["sources"]} == {"cfg", "web"}
            code, out = tain(url, token, "status")
            assert code == 0 and "web" in out and "success" in out

            code, out = tain(url, token, "source", "remove", "cfg")
            assert code == 5 and "tain.toml" in out and len(out.strip().splitlines()) == 1
            assert (site_dir / "sources" / "web" / "tree" / "a.txt").exists()
            assert tain(url, token, "source", "remove", "web")[0] == 0
            assert tain(url, token, "source", "show", "web")[0] == 4
            assert not (site_dir / "sources" / "web").exists()

            dead = f"http://127.0.0.1:{free_port()}/"
            assert tain(url, token, "source", "add", "dead", "--repo", "mirror", "--http",
                        dead)[0] == 0
            code, out = tain(url, token, "source", "run-now", "dead", "--wait")
            assert code == 1 and "failed: cannot reach the upstream" in out, out


def _bad_input(url: str, token: str, base: str) -> None:
    cases = [
        (["--rsync", "http://h/x"], 2, "bad rsync upstream URL"),
        (["--http", "ftp://h/x/"], 2, "bad http upstream URL"),
        (["--http", f"{base}/pub/", "--cron", "61 * * * *"], 2, "bad cron"),
        (["--http", f"{base}/pub/", "--every", "1h", "--cron", "* * * * *"], 2, "not both"),
        (["--http", f"{base}/pub/", "--max-delete", "lots"], 2, "bad max-delete"),
        ([], 2, "exactly one upstream"),
    ]
    for extra, want, words in cases:
        code, out = tain(url, token, "source", "add", "x", "--repo", "mirror", *extra)
        assert code == want and words in out, (extra, out)
        assert len(out.strip().splitlines()) == 1 and "Traceback" not in out
    code, out = tain(url, token, "source", "add", "x", "--repo", "nope", "--http",
                     f"{base}/pub/")
    assert code == 4 and "nope" in out
    code, out = tain(url, token, "source", "add", "cfg", "--repo", "mirror", "--http",
                     f"{base}/pub/")
    assert code == 5 and "already exists" in out
    code, out = tain(url, token, "source", "run-now", "missing")
    assert code == 4 and "no source" in out
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers) as c:
        hook = c.post("/api/v1/sources", json={"name": "h", "repo": "mirror", "kind": "http",
                                               "url": f"{base}/pub/", "on_success": "id"})
        assert hook.status_code == 400 and "tain.toml" in hook.json()["message"]
        leak = c.post("/api/v1/sources", json={"name": "p", "repo": "mirror", "kind": "rsync",
                                               "url": "rsync://h/m/",
                                               "password_env": "TAIN_DATABASE_URL"})
        assert leak.status_code == 400 and "TAIN_SOURCE_" in leak.json()["message"]
        c.post("/api/v1/users", json={"name": "bob"}).raise_for_status()
        bob = c.post("/api/v1/tokens", json={"user": "bob"}).json()["token"]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {bob}"}) as c:
        assert c.get("/api/v1/sources").status_code == 403
        assert c.post("/api/v1/sources/cfg/run").status_code == 403
