"""The [metrics], [stats] and [alerts] sections: defaults, tuning, bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tain.config import parse
from tain.core.monitoring import MonitoringConfig
from tain.errors import UsageError


def monitoring(raw: dict[str, Any]) -> MonitoringConfig:
    return parse(raw, Path("/srv/tain"), {}).monitoring


def test_defaults_are_safe_and_on() -> None:
    m = monitoring({})
    assert m.metrics.enabled and m.metrics.anonymous == "loopback" and m.metrics.token is None
    assert m.stats.site_name == "127.0.0.1:8080" and m.stats.flush_seconds == 5.0
    assert m.alerts.rules.site_down_after == 300 and m.alerts.rules.disk_free_below_percent == 10
    assert m.alerts.webhooks == () and m.alerts.emails == ()
    named = monitoring({"server": {"public_url": "https://eu.example.org:8443/x"}})
    assert named.stats.site_name == "eu.example.org:8443"


def test_rules_tuned_and_turned_off_and_channels() -> None:
    m = monitoring({
        "metrics": {"token": "s3cret", "anonymous": "none"},
        "stats": {"site_name": "eu-1", "flush_every": "2s", "popular_paths": 50},
        "alerts": {
            "check_every": "10s", "repeat_every": "off",
            "site_down": {"after": "1m"}, "site_stale": {"enabled": False},
            "agent_silent": {"after": "1h"}, "agent_queue": {"above": 5, "growing_checks": "off"},
            "disk_free": {"below_percent": 5, "below_bytes": "10G"}, "audit": {"enabled": False},
            "webhook": [{"url": "https://hooks.example.org/x", "format": "slack"}],
            "email": [{"host": "smtp.example.org", "to": ["ops@example.org"],
                       "security": "ssl", "from": "tain@example.org"}],
        },
    })
    assert m.metrics.token == "s3cret" and m.metrics.anonymous == "none"
    assert (m.stats.site_name, m.stats.flush_seconds, m.stats.popular_paths) == ("eu-1", 2, 50)
    a = m.alerts
    assert a.check_seconds == 10 and a.repeat_seconds is None
    r = a.rules
    assert r.site_down_after == 60 and r.site_stale_revisions is None
    assert r.site_stale_seconds is None and r.agent_silent_after == 3600
    assert r.agent_queue_above == 5 and r.agent_queue_growing_checks is None
    assert r.disk_free_below_percent == 5 and r.disk_free_below_bytes == 10 * 2**30
    assert not r.audit_broken and r.job_failed
    assert a.webhooks[0].format == "slack"
    assert (a.emails[0].port, a.emails[0].security) == (465, "ssl")


@pytest.mark.parametrize("raw, words", [
    ({"metrics": {"anonymous": "everyone"}}, "anonymous"),
    ({"metrics": "yes"}, "[metrics]"),
    ({"stats": {"popular_paths": 0}}, "popular_paths"),
    ({"alerts": {"check_every": "soon"}}, "bad duration"),
    ({"alerts": {"site_down": {"after": True}}}, "after"),
    ({"alerts": {"agent_queue": {"above": -1}}}, "above"),
    ({"alerts": {"webhook": [{"url": "ftp://x"}]}}, "http(s) URL"),
    ({"alerts": {"webhook": [{"url": "http://x", "format": "teams"}]}}, "format"),
    ({"alerts": {"email": [{"host": "smtp", "to": ["nobody"]}]}}, "to ="),
    ({"alerts": {"email": [{"host": "smtp", "to": ["a@b"], "security": "tls"}]}}, "security"),
])
def test_bad_values_are_refused_with_a_clear_message(raw: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=None) as err:
        monitoring(raw)
    assert words in str(err.value)
