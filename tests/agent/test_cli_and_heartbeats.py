"""The agent's command line (``tain agent``, ``tain agent status``, ``tain agents``) and
the heartbeat API of a site."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tain.agent.journal import Journal, Mark
from tain.client import SiteClient
from tests.agent.cli_entry import app
from tests.agent.conftest import REPO, Site

runner = CliRunner()


def tain(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"TAIN_TOKEN": "", "TAIN_SITE": "",
                                                 **(env or {})})
    return result.exit_code, result.output


def report(agent_id: str = "agent-1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": agent_id, "repo": REPO, "host": "src1", "directory": "/srv/www",
        "version": "0.1.0", "queue_length": 3, "last_revision": 7,
        "current_site": "http://a:8080", "last_error": None,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("args, message", [
    (["agent", "{tmp}"], "--site"),
    (["agent", "{tmp}", "--site", "http://127.0.0.1:9", "-r", "www"], "token"),
    (["agent", "{tmp}/missing", "--site", "http://x", "-r", "www", "--token", "t"],
     "not a directory"),
    (["agent", "{tmp}", "--site", "ftp://x", "-r", "www", "--token", "t"], "http"),
    (["agent", "run", "{tmp}", "--config", "{tmp}/agent.toml"], "not both"),
    (["agent", "{tmp}", "--site", "http://x", "-r", "www", "--token", "t", "--bwlimit", "x"],
     "bad size"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "agent.toml").write_text("")
    code, out = tain(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 2, out
    assert message in out


def test_agent_status_of_a_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "states" / "abc"
    journal = Journal(state)
    journal.set({"directory": "/srv/www", "repo": "www", "agent_id": "a1", "state": "idle",
                 "last_commit_rev": 12, "last_commit_at": 1.8e9, "remote_site": "http://a",
                 "sites": "http://a http://b", "last_error": "http://b: down",
                 "last_error_at": 1.8e9})
    journal.record_marks([Mark("x", 1.0, writing=True), Mark("y", 1.0)])
    journal.close()
    for where in (state, tmp_path / "states"):  # the directory itself, or a base of them
        code, out = tain("agent", "status", "--state-dir", str(where), "--json")
        assert code == 0, out
        [record] = json.loads(out)
        assert record["queue_length"] == 2 and record["being_written"] == 1
        assert record["running"] is False and record["state"] == "stopped"
        assert record["last_commit_rev"] == 12 and record["sites"] == ["http://a", "http://b"]
    code, out = tain("agent", "status", "--state-dir", str(state))
    assert code == 0, out
    assert "revision 12" in out and "2 path(s), 1 being written" in out and "down" in out
    code, out = tain("agent", "status", "--state-dir", str(tmp_path / "none"))
    assert code == 4 and "no agent state" in out


def test_agent_status_from_a_config_file(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    Journal(tmp_path / "st").close()
    config = tmp_path / "agent.toml"
    config.write_text('[[source]]\ndir = "www"\nrepo = "www"\nsites = ["http://a"]\n'
                      'state_dir = "st"\n')
    code, out = tain("agent", "status", "--config", str(config), "--json")
    assert code == 0, out
    assert json.loads(out)[0]["queue_length"] == 0


def test_heartbeats_need_write_access_and_listing_needs_an_admin(site: Site) -> None:
    with SiteClient(site.url, site.token) as admin:
        admin.create_user("reader")
        admin.create_user("writer")
        admin.set_grant("reader", REPO, "read")
        admin.set_grant("writer", REPO, "write")
        reader = admin.create_token("reader")["token"]
        writer = admin.create_token("writer")["token"]
    url = f"{site.url}/api/v1/agents/heartbeat"
    assert httpx.post(url, json=report()).status_code == 401
    denied = httpx.post(url, json=report(), headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    bad = httpx.post(url, json=report("no spaces"), headers={"Authorization": f"Bearer {writer}"})
    assert bad.status_code == 400
    with SiteClient(site.url, writer) as client:
        answer = client.agent_heartbeat(report())
        assert answer["agent"]["user"] == "writer" and answer["head"] == 0
        assert answer["agent"]["address"] == "127.0.0.1"
        with pytest.raises(Exception, match="not a site admin"):
            client.list_agents()


def test_tain_agents_lists_and_forgets(site: Site) -> None:
    with SiteClient(site.url, site.token) as client:
        client.agent_heartbeat(report("agent-1"))
        client.agent_heartbeat(report("agent-2", last_error="http://b: refused", host="src2"))
    env = {"TAIN_SITE": site.url, "TAIN_TOKEN": site.token}
    code, out = tain("agents", "--json", env=env)
    assert code == 0, out
    rows = json.loads(out)
    assert [r["agent_id"] for r in rows] == ["agent-1", "agent-2"]
    assert rows[0]["queue_length"] == 3 and rows[0]["seconds_since_seen"] >= 0
    code, out = tain("agents", env=env)
    assert code == 0 and "src2" in out and "refused" in out and "ago" in out
    code, out = tain("agents", "forget", "agent-1", env=env)
    assert code == 0, out
    code, out = tain("agents", "list", "--json", "--repo", REPO, env=env)
    assert [r["agent_id"] for r in json.loads(out)] == ["agent-2"]
    code, out = tain("agents", "forget", "agent-1", env=env)
    assert code == 4
    with SiteClient(site.url, site.token) as client:
        assert [e["action"] for e in client.audit(action="agent.forget")] == ["agent.forget"]
