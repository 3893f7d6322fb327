"""Where alert notifications go: webhooks (generic JSON or Slack's ``{"text": ...}``)
and email (SMTP with STARTTLS, SSL or neither). ``Dispatcher.send`` delivers one
notification to every channel, retrying each with exponential backoff; a channel
that still fails is logged and reported in the result, never raised, so the alert
engine keeps running.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx

from tain.core.monitoring import AlertsConfig, EmailChannel, WebhookChannel

log = logging.getLogger("tain.alerts")

_MAIL_POLICY = policy.SMTP.clone(max_line_length=998)
EVENTS = ("firing", "repeat", "resolved", "test")
_ICONS = {"firing": ":rotating_light:", "repeat": ":rotating_light:",
          "resolved": ":white_check_mark:", "test": ":information_source:"}


@dataclass(frozen=True)
class Notification:
    event: str  # one of EVENTS
    site: str
    rule: str
    subject: str
    message: str
    severity: str
    at: float
    opened_at: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        word = {"firing": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED",
                "test": "TEST"}[self.event]
        return f"[tain {self.site}] {word}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event, "site": self.site, "time": self.at,
            "alert": {"rule": self.rule, "subject": self.subject, "key": f"{self.rule}:"
                      f"{self.subject}", "severity": self.severity, "message": self.message,
                      "opened_at": self.opened_at, "details": self.details},
        }

    def text(self) -> str:
        lines = [self.title, "", f"rule:     {self.rule}", f"subject:  {self.subject}",
                 f"severity: {self.severity}"]
        if self.opened_at is not None:
            lines.append(f"since:    {_utc(self.opened_at)}")
        lines.append(f"at:       {_utc(self.at)}")
        return "\n".join(lines) + "\n"


class Channel:
    name: str = ""

    def deliver(self, note: Notification) -> None:
        raise NotImplementedError


class Webhook(Channel):
    def __init__(self, config: WebhookChannel, *, timeout: float = 10.0) -> None:
        self.config, self.name, self.timeout = config, config.name, timeout

    def deliver(self, note: Notification) -> None:
        if self.config.format == "slack":
            body: dict[str, Any] = {"text": f"{_ICONS[note.event]} {note.title}"}
        else:
            body = note.to_json()
        response = httpx.post(self.config.url, json=body, timeout=self.timeout)
        if response.status_code >= 300:
            raise RuntimeError(f"HTTP {response.status_code} from {self.config.url}")


class Email(Channel):
    def __init__(self, config: EmailChannel, *, timeout: float = 20.0) -> None:
        self.config, self.name, self.timeout = config, config.name, timeout

    def deliver(self, note: Notification) -> None:
        c = self.config
        msg = EmailMessage(policy=_MAIL_POLICY)  # long subjects stay on one line
        msg["Subject"], msg["From"], msg["To"] = note.title, c.sender, ", ".join(c.to)
        msg.set_content(note.text())
        context = ssl.create_default_context(cafile=c.ca_file)
        smtp: smtplib.SMTP
        if c.security == "ssl":
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=self.timeout)
        with smtp:
            if c.security == "starttls":
                smtp.starttls(context=context)
            if c.username:
                smtp.login(c.username, c.password or "")
            smtp.send_message(msg)


@dataclass(frozen=True)
class Delivery:
    channel: str
    ok: bool
    attempts: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "ok": self.ok, "attempts": self.attempts,
                "error": self.error}


class Dispatcher:
    def __init__(self, channels: Sequence[Channel], *, attempts: int = 3,
                 backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.channels = tuple(channels)
        self.attempts, self.backoff, self._sleep = max(1, attempts), backoff, sleep

    def send(self, note: Notification) -> list[Delivery]:
        return [self._deliver(channel, note) for channel in self.channels]

    def _deliver(self, channel: Channel, note: Notification) -> Delivery:
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                channel.deliver(note)
            except Exception as exc:  # any failure of a foreign system: retry, then report
                error = f"{type(exc).__name__}: {exc}"
                log.warning("alert to %s failed (attempt %d/%d): %s", channel.name, attempt,
                            self.attempts, error)
                if attempt < self.attempts:
                    self._sleep(self.backoff * 2 ** (attempt - 1))
                continue
            return Delivery(channel.name, True, attempt)
        log.error("alert to %s not delivered: %s", channel.name, error)
        return Delivery(channel.name, False, self.attempts, error)


def channels_from(config: AlertsConfig) -> list[Channel]:
    return [*(Webhook(w) for w in config.webhooks), *(Email(e) for e in config.emails)]


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
