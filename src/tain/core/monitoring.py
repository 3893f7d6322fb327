"""The ``[metrics]``, ``[stats]`` and ``[alerts]`` sections of ``tain.toml``: values and
their parser (tables in, frozen values out; ``tain.config`` calls ``parse_monitoring``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tain.core.alerts import AlertRules
from tain.errors import UsageError

ANONYMOUS_CHOICES = ("loopback", "all", "none")
SECURITY_CHOICES = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    token: str | None = None  # a scraper's bearer secret (site-admin tokens work too)
    anonymous: str = "loopback"  # who may scrape without a token: loopback, all, none


@dataclass(frozen=True)
class StatsConfig:
    enabled: bool = True
    site_name: str = ""  # the name rows are kept under; "" = the host of public_url or listen
    flush_seconds: float = 5.0
    popular_paths: int = 1000  # paths tracked per repository per day
    keep_days: int = 400  # per-day rows older than this are deleted


@dataclass(frozen=True)
class WebhookChannel:
    url: str
    format: str = "json"  # "json" (generic) or "slack" ({"text": ...})
    name: str = ""


@dataclass(frozen=True)
class EmailChannel:
    host: str
    to: tuple[str, ...]
    sender: str
    port: int = 587
    security: str = "starttls"  # starttls, ssl or none
    username: str | None = None
    password: str | None = None
    name: str = ""
    ca_file: str | None = None  # trust this CA (PEM) for the server's certificate


@dataclass(frozen=True)
class AlertsConfig:
    enabled: bool = True
    check_seconds: float = 30.0
    repeat_seconds: float | None = 4 * 3600.0
    audit_check_seconds: float = 3600.0  # verifying the chain reads all of it
    keep_resolved_days: float = 30.0
    rules: AlertRules = field(default_factory=AlertRules)
    webhooks: tuple[WebhookChannel, ...] = ()
    emails: tuple[EmailChannel, ...] = ()


@dataclass(frozen=True)
class MonitoringConfig:
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)


Getter = Callable[[Mapping[str, Any], str, Any, Any], Any]
Parse = Callable[[str], int]


def parse_monitoring(raw: Mapping[str, Any], get: Getter, duration: Parse, size: Parse,
                     listen: str, public_url: str | None) -> MonitoringConfig:
    """``get(table, key, type, default)``, ``duration`` and ``size`` are tain.config's."""
    parser = _Parser(get, duration, size)
    return MonitoringConfig(
        metrics=parser.metrics(parser.table(raw, "metrics")),
        stats=parser.stats(parser.table(raw, "stats"), listen, public_url),
        alerts=parser.alerts(parser.table(raw, "alerts")),
    )


class _Parser:
    def __init__(self, get: Getter, duration: Parse, size: Parse) -> None:
        self.get, self.duration, self.size = get, duration, size

    def table(self, raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise UsageError(f"[{name}] in tain.toml must be a table")
        return value

    def seconds(self, table: Mapping[str, Any], key: str, default: float | None) -> float | None:
        """A duration; ``false`` or ``"off"`` turns it off (None)."""
        value = table.get(key)
        if value is None:
            return default
        if value is False or value == "off":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise UsageError(f"'{key}' must be a duration like \"15m\", or \"off\"")
        return float(self.duration(str(value)))

    def number(self, table: Mapping[str, Any], key: str, default: float | None) -> float | None:
        value = table.get(key)
        if value is None:
            return default
        if value is False or value == "off":
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UsageError(f"'{key}' must be a non-negative number, or \"off\"")
        return float(value)

    def metrics(self, t: Mapping[str, Any]) -> MetricsConfig:
        anonymous = self.get(t, "anonymous", str, "loopback")
        if anonymous not in ANONYMOUS_CHOICES:
            raise UsageError(f"[metrics] anonymous must be one of {', '.join(ANONYMOUS_CHOICES)}")
        return MetricsConfig(enabled=self.get(t, "enabled", bool, True),
                             token=self.get(t, "token", str, "") or None, anonymous=anonymous)

    def stats(self, t: Mapping[str, Any], listen: str, public_url: str | None) -> StatsConfig:
        popular = self.get(t, "popular_paths", int, 1000)
        if not 1 <= popular <= 100_000:
            raise UsageError("[stats] popular_paths must be between 1 and 100000")
        name = self.get(t, "site_name", str, "") or default_site_name(listen, public_url)
        return StatsConfig(
            enabled=self.get(t, "enabled", bool, True), site_name=name[:255],
            flush_seconds=self.seconds(t, "flush_every", 5.0) or 5.0, popular_paths=popular,
            keep_days=max(1, self.get(t, "keep_days", int, 400)),
        )

    def alerts(self, t: Mapping[str, Any]) -> AlertsConfig:
        return AlertsConfig(
            enabled=self.get(t, "enabled", bool, True),
            check_seconds=self.seconds(t, "check_every", 30.0) or 30.0,
            repeat_seconds=self.seconds(t, "repeat_every", 4 * 3600.0),
            audit_check_seconds=self.seconds(t, "audit_check_every", 3600.0) or 3600.0,
            keep_resolved_days=self.number(t, "keep_resolved_days", 30.0) or 30.0,
            rules=self.rules(t),
            webhooks=tuple(self.webhook(w) for w in self.tables(t, "webhook")),
            emails=tuple(self.email(e) for e in self.tables(t, "email")),
        )

    def rules(self, t: Mapping[str, Any]) -> AlertRules:
        d = AlertRules()
        sub = {name: self.table(t, name) for name in
               ("site_down", "site_stale", "agent_silent", "agent_queue", "scrub",
                "disk_free", "jobs", "audit")}
        on = {name: self.get(table, "enabled", bool, True) for name, table in sub.items()}

        def maybe(name: str, value: Any) -> Any:
            return value if on[name] else None

        below_bytes = self.get(sub["disk_free"], "below_bytes", str, "")
        queue_above = self.number(sub["agent_queue"], "above", d.agent_queue_above)
        growing = self.number(sub["agent_queue"], "growing_checks", d.agent_queue_growing_checks)
        revs = self.number(sub["site_stale"], "revisions", d.site_stale_revisions)
        return AlertRules(
            site_down_after=maybe("site_down", self.seconds(sub["site_down"], "after",
                                                            d.site_down_after)),
            site_stale_revisions=maybe("site_stale", None if revs is None else int(revs)),
            site_stale_seconds=maybe("site_stale", self.seconds(sub["site_stale"], "after",
                                                                d.site_stale_seconds)),
            agent_silent_after=maybe("agent_silent", self.seconds(sub["agent_silent"], "after",
                                                                  d.agent_silent_after)),
            agent_queue_above=maybe("agent_queue", None if queue_above is None
                                    else int(queue_above)),
            agent_queue_growing_checks=maybe("agent_queue", None if growing is None
                                             else int(growing)),
            scrub_corruption=on["scrub"],
            disk_free_below_percent=maybe("disk_free", self.number(
                sub["disk_free"], "below_percent", d.disk_free_below_percent)),
            disk_free_below_bytes=maybe("disk_free",
                                        self.size(below_bytes) if below_bytes else None),
            job_failed=on["jobs"],
            audit_broken=on["audit"],
        )

    def tables(self, t: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        value = t.get(key, [])
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise UsageError(f"[[alerts.{key}]] must be tables")
        return value

    def webhook(self, t: Mapping[str, Any]) -> WebhookChannel:
        url = self.get(t, "url", str, "")
        if urlsplit(url).scheme not in ("http", "https"):
            raise UsageError(f"[[alerts.webhook]] url must be an http(s) URL, not {url!r}")
        fmt = self.get(t, "format", str, "json")
        if fmt not in ("json", "slack"):
            raise UsageError("[[alerts.webhook]] format must be 'json' or 'slack'")
        return WebhookChannel(url=url, format=fmt, name=self.get(t, "name", str, "") or url)

    def email(self, t: Mapping[str, Any]) -> EmailChannel:
        host = self.get(t, "host", str, "")
        to = self.get(t, "to", list, [])
        if not host or not to or not all(isinstance(x, str) and "@" in x for x in to):
            raise UsageError("[[alerts.email]] needs host and to = [\"someone@example.org\"]")
        security = self.get(t, "security", str, "starttls")
        if security not in SECURITY_CHOICES:
            raise UsageError(f"[[alerts.email]] security must be one of "
                             f"{', '.join(SECURITY_CHOICES)}")
        default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
        return EmailChannel(
            host=host, to=tuple(to), sender=self.get(t, "from", str, "tain@localhost"),
            port=self.get(t, "port", int, default_port), security=security,
            username=self.get(t, "username", str, "") or None,
            password=self.get(t, "password", str, "") or None,
            name=self.get(t, "name", str, "") or f"email {', '.join(to)}",
            ca_file=self.get(t, "ca_file", str, "") or None,
        )


def default_site_name(listen: str, public_url: str | None) -> str:
    """The host of ``public_url`` (with its port), else the listen address."""
    if public_url:
        host = urlsplit(public_url).netloc
        if host:
            return host
    return listen

