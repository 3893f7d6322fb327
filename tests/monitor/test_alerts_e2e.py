"""Alerts end to end: a real site with an injected clock, real webhook and SMTP
receivers, the API and the CLI (``tain alerts``, ``tain status``)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tain.core.alerts import SiteFact
from tain.server.monitoring import monitoring_of
from tests.monitor.conftest import MonitoredSite, monitored_site
from tests.monitor.receivers import smtp_server, webhook_receiver

QUIET = """
[alerts]
check_every = "1h"      # the test checks when it wants to
repeat_every = "10m"
[alerts.disk_free]
enabled = false         # whatever the test machine's disks hold
"""


def hooks_toml(url: str, fmt: str = "json") -> str:
    return f'[[alerts.webhook]]\nurl = "{url}"\nformat = "{fmt}"\n'


def check(s: MonitoredSite) -> dict[str, object]:
    with httpx.Client(base_url=s.url, headers={"Authorization": f"Bearer {s.token}"}) as c:
        response = c.post("/api/v1/alerts/check")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def cli(s: MonitoredSite, *args: str) -> tuple[int, str]:
    from tain.cli.main import app

    result = CliRunner().invoke(app, [*args, "--site", s.url, "--token", s.token])
    return result.exit_code, result.stdout


def test_a_mirror_down_fires_once_repeats_and_resolves(tmp_path: Path) -> None:
    with webhook_receiver() as (url, hooks), monitored_site(
        tmp_path, QUIET + '[alerts.site_down]\nafter = "2m"\n' + hooks_toml(url)
    ) as s:
        mirror = {"fact": SiteFact("mirror-2", True, lag_revisions=0, lag_seconds=0.0)}
        monitoring_of(s.app).providers.add_sites(lambda: [mirror["fact"]])
        assert check(s)["steps"] == []
        mirror["fact"] = SiteFact("mirror-2", False, "connection refused",
                                  down_since=s.clock.now)
        assert check(s)["steps"] == []  # down, but not for 2 minutes yet
        s.clock.advance(121)
        assert check(s)["steps"] == [{"kind": "fire", "key": "site_down:mirror-2"}]
        [fired] = hooks.wait_for(1)
        assert fired["event"] == "firing"
        assert fired["alert"]["message"] == "site mirror-2 is down: connection refused"
        s.clock.advance(60)
        check(s)  # still down: nothing sent
        s.clock.advance(600)
        check(s)
        assert hooks.wait_for(2)[1]["event"] == "repeat"
        code, out = cli(s, "status")
        assert code == 1 and "1 OPEN" in out and "mirror-2" in out
        mirror["fact"] = SiteFact("mirror-2", True, lag_revisions=0, lag_seconds=1.0)
        assert check(s)["steps"] == [{"kind": "resolve", "key": "site_down:mirror-2"}]
        resolved = hooks.wait_for(3)[2]
        assert resolved["event"] == "resolved" and resolved["alert"]["key"] == \
            "site_down:mirror-2"
        code, out = cli(s, "alerts", "--json")
        [row] = json.loads(out)
        assert code == 0 and row["state"] == "resolved" and row["sends"] == 2
        assert cli(s, "status")[0] == 0
        assert len(hooks.bodies) == 3


def test_a_silent_agent_fires_through_the_api_and_shows_in_status(tmp_path: Path) -> None:
    with webhook_receiver() as (url, hooks), monitored_site(
        tmp_path, QUIET + hooks_toml(url, "slack")
    ) as s, httpx.Client(base_url=s.url,
                         headers={"Authorization": f"Bearer {s.token}"}) as c:
        c.post("/api/v1/repos", json={"name": "www"}).raise_for_status()
        beat = {"agent_id": "src-1", "repo": "www", "host": "files1", "queue_length": 3}
        c.post("/api/v1/agents/heartbeat", json=beat).raise_for_status()
        s.clock.advance(300)
        assert check(s)["open"] == []
        s.clock.advance(301)  # silent for 601 s: beyond the default 10 minutes
        [opened] = check(s)["open"]  # type: ignore[misc]
        assert opened["key"] == "agent_silent:src-1" and opened["sends"] == 1
        assert hooks.wait_for(1)[0]["text"].startswith(
            ":rotating_light: [tain 127.0.0.1:")
        status = c.get("/api/v1/status").json()
        assert [a["key"] for a in status["alerts"]] == ["agent_silent:src-1"]
        code, out = cli(s, "status", "--json")
        assert code == 1 and json.loads(out)["alerts"][0]["rule"] == "agent_silent"
        c.post("/api/v1/agents/heartbeat", json=beat).raise_for_status()
        assert check(s)["open"] == []
        assert hooks.wait_for(2)[1]["text"].startswith(":white_check_mark:")
        listed = c.get("/api/v1/alerts").json()
        assert listed["open"] == [] and listed["recent"][0]["key"] == "agent_silent:src-1"


def test_alerts_test_reaches_every_channel_and_fails_on_a_dead_one(tmp_path: Path) -> None:
    with webhook_receiver() as (url, hooks), smtp_server() as (port, box):
        email = (f'[[alerts.email]]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
                 'to = ["ops@example.org"]\n')
        with monitored_site(tmp_path, QUIET + hooks_toml(url) + hooks_toml(url, "slack")
                            + email) as s:
            code, out = cli(s, "alerts", "test", "--json")
            assert code == 0, out
            assert [d["ok"] for d in json.loads(out)] == [True, True, True]
            generic, slack = sorted(hooks.wait_for(2), key=lambda b: "text" in b)
            assert generic["event"] == "test" and "TEST" in slack["text"]
            assert box.messages[0]["Subject"].startswith("[tain 127.0.0.1:")
    dead = hooks_toml("http://127.0.0.1:9/nobody")
    with monitored_site(tmp_path / "2", QUIET + dead) as s:
        monitoring_of(s.app).dispatcher.backoff = 0.01
        code, _ = cli(s, "alerts", "test")
        assert code == 8  # RemoteError: the message did not reach a channel


def test_counts_are_flushed_at_shutdown(tmp_path: Path) -> None:
    with monitored_site(tmp_path, '[stats]\nflush_every = "1h"\n') as s, httpx.Client(
        base_url=s.url, headers={"Authorization": f"Bearer {s.token}"}
    ) as c:
        c.post("/api/v1/repos", json={"name": "www"}).raise_for_status()
        c.put("/www/a.txt", content=b"abc").raise_for_status()
        assert c.get("/www/a.txt").content == b"abc"
        site = s.site
        day = c.get("/api/v1/stats/downloads").json()["since"]
    # the server stopped (and with it the flusher, which wrote what it held)
    from tain.catalog.sql import open_catalog

    catalog = open_catalog(site.config.database_url)
    try:
        [row] = catalog.download_stats(since=day)
        [push] = catalog.push_stats(since=day)
    finally:
        catalog.close()
    assert (row.downloads, row.bytes) == (1, 3)
    assert (push.commits, push.bytes_received, push.files_changed) == (1, 3, 1)
