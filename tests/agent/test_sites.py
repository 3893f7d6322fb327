"""The link to the sites: catching up before use, repeated conflicts, heartbeats."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from tain.agent.config import Timing, source_config
from tain.agent.heartbeat import Status, heartbeat_report
from tain.agent.journal import Journal
from tain.agent.sites import CONFLICTS_BEFORE_HOLD, SiteLink
from tain.errors import Conflict
from tests.agent.conftest import REPO, Site


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def link(tmp_path: Path, sites: list[str], token: str = "t") -> tuple[SiteLink, Journal]:
    (tmp_path / "src").mkdir(exist_ok=True)
    config = source_config(tmp_path / "src", repo=REPO, sites=sites, token=token, env={},
                           state_dir=tmp_path / "state")
    journal = Journal(config.state_dir)
    return SiteLink(config, Timing(), journal, stop=threading.Event(), clock=Clock(),
                    rng=random.Random(1)), journal


def test_repeated_conflicts_put_the_site_on_hold(tmp_path: Path) -> None:
    sites, journal = link(tmp_path, ["http://a", "http://b"])
    for _ in range(CONFLICTS_BEFORE_HOLD - 1):
        sites.conflicted("http://a", Conflict("moved"))
        assert sites.selector.choose() == "http://a"
    sites.conflicted("http://a", Conflict("moved"))
    assert sites.selector.choose() == "http://b"
    sites.close()
    journal.close()


def test_ready_catches_up_once_and_after_a_heartbeat_sees_another_head(
    tmp_path: Path, site: Site
) -> None:
    sites, journal = link(tmp_path, [site.url], token=site.token)
    client = sites.ready(site.url)
    assert journal.remote_record() == (site.url, 0) and sites.head == 0
    assert sites.ready(site.url) is client
    sites.head_seen(0)
    sites.verify(site.url)  # not due yet
    sites.head_seen(5)  # a heartbeat saw another head: verify at once
    sites.verify(site.url)
    assert sites.selector.current == site.url
    sites.close()
    journal.close()


def test_heartbeat_report() -> None:
    status = Status(queue_length=4, last_revision=9, last_error="boom")
    body = heartbeat_report(status, agent_id="a1", repo="www", directory="/srv", site="http://a")
    assert body["queue_length"] == 4 and body["last_revision"] == 9
    assert body["current_site"] == "http://a" and body["host"] and body["version"]
    status.error("boom")
    assert status.last_error_at is None  # the same error again keeps its first time
    status.error("other")
    assert status.last_error == "other" and status.last_error_at is not None
    assert status.published()["queue_length"] == 4
