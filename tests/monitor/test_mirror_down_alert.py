"""The whole chain with nothing simulated: a primary whose health checks probe a real
mirror site; the mirror stops, the checks take it out of rotation, the alert engine
fires ``site_down`` to a real webhook receiver; the mirror returns, the checks put it
back and the receiver gets the resolved message."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.catalog.conftest import FakeClock
from tests.e2e.protocol import push_files
from tests.mirror.network import Member
from tests.monitor.receivers import webhook_receiver

FILES = {"index.html": b"<h1>hello</h1>\n", "pool/a.deb": b"deb " * 500}


def _config(mirror: Member, hook_url: str) -> str:
    return f"""
[redirector]
name = "primary"
primary = true
check_interval = "1h"      # the test runs the rounds
fail_after = 1
recover_after = 1

[[sites]]
name = "mirror-eu"
url = "{mirror.url}"

[alerts]
check_every = "1h"
repeat_every = "1h"
[alerts.disk_free]
enabled = false
[alerts.site_down]
after = "1m"

[[alerts.webhook]]
url = "{hook_url}"
"""


def _check_alerts(primary: Member) -> list[dict[str, str]]:
    with primary.client() as c:
        answer = c.post("/api/v1/alerts/check")
    assert answer.status_code == 200, answer.text
    steps: list[dict[str, str]] = answer.json()["steps"]
    return steps


def _round(primary: Member, clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)
    assert primary.app is not None
    assert primary.app.state.health.checker.run_once()


def _wait_first_round(primary: Member) -> None:
    """``tain serve`` runs a round at start; wait until it has recorded its findings."""
    assert primary.site is not None
    deadline = time.monotonic() + 30
    while not primary.site.catalog.site_health()[0]:
        assert time.monotonic() < deadline, "the first round of health checks never ran"
        time.sleep(0.05)


def test_a_mirror_going_down_and_back_reaches_the_webhook(tmp_path: Path) -> None:
    clock = FakeClock()
    mirror = Member(tmp_path, "mirror")
    primary = Member(tmp_path, "primary", clock=clock)
    with webhook_receiver() as (hook_url, hooks):
        primary.configure(_config(mirror, hook_url))
        mirror.start()
        primary.start()
        try:
            for member in (primary, mirror):
                with member.client() as c:
                    c.post("/api/v1/repos", json={"name": "pub", "public": True}
                           ).raise_for_status()
                    push_files(c, "pub", FILES)
            _wait_first_round(primary)
            _round(primary, clock, 30)
            assert _check_alerts(primary) == []

            mirror.stop()
            _round(primary, clock, 30)  # out of rotation after one failure
            with httpx.Client(base_url=primary.url, timeout=30) as anon:
                sites = {s["name"]: s for s in anon.get("/api/v1/sites").json()["sites"]}
            assert sites["mirror-eu"]["up"] is False
            clock.advance(61)  # down for longer than [alerts.site_down] after
            assert _check_alerts(primary) == [{"kind": "fire", "key": "site_down:mirror-eu"}]
            [fired] = hooks.wait_for(1)
            assert fired["event"] == "firing" and fired["alert"]["rule"] == "site_down"
            assert fired["alert"]["message"].startswith(
                "site mirror-eu is down: cannot reach http://127.0.0.1:")

            mirror.start()
            _round(primary, clock, 30)
            assert _check_alerts(primary) == [{"kind": "resolve", "key": "site_down:mirror-eu"}]
            resolved = hooks.wait_for(2)[1]
            assert resolved["event"] == "resolved"
            assert resolved["alert"]["key"] == "site_down:mirror-eu"
        finally:
            primary.stop()
            mirror.stop()
