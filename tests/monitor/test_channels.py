"""Deliveries to real receivers: generic JSON and Slack webhooks, email over plain SMTP
and STARTTLS with login, and retries with backoff that never raise."""

from __future__ import annotations

import ssl
from pathlib import Path

from tain.core.monitoring import EmailChannel, WebhookChannel
from tain.monitor.channels import Dispatcher, Email, Notification, Webhook
from tests.e2e.test_tls_and_expiry import self_signed
from tests.monitor.receivers import accept_login, smtp_server, webhook_receiver

NOTE = Notification("firing", "eu-1", "site_down", "mirror-2", "site mirror-2 is down: 503",
                    "critical", 1_800_000_000.0, 1_799_999_000.0, {"down_since": 1.0})


def test_generic_json_and_slack_webhooks() -> None:
    with webhook_receiver() as (url, hooks):
        sent = Dispatcher([Webhook(WebhookChannel(url, "json", "json")),
                           Webhook(WebhookChannel(url, "slack", "slack"))]).send(NOTE)
        generic, slack = hooks.wait_for(2)
    assert [d.ok for d in sent] == [True, True]
    assert generic["event"] == "firing" and generic["site"] == "eu-1"
    assert generic["alert"]["key"] == "site_down:mirror-2"
    assert generic["alert"]["details"] == {"down_since": 1.0}
    assert slack == {"text": ":rotating_light: [tain eu-1] FIRING: site mirror-2 is down: 503"}


def test_failures_are_retried_with_backoff_then_reported_not_raised() -> None:
    pauses: list[float] = []
    with webhook_receiver(fail_first=2) as (url, hooks):
        dispatcher = Dispatcher([Webhook(WebhookChannel(url))], attempts=3, backoff=0.5,
                                sleep=pauses.append)
        [delivery] = dispatcher.send(NOTE)
        assert delivery.ok and delivery.attempts == 3 and pauses == [0.5, 1.0]
        assert len(hooks.wait_for(1)) == 1
    # nobody listens any more: every attempt fails, the result says so
    [lost] = Dispatcher([Webhook(WebhookChannel(url, name="gone"))], attempts=2,
                        sleep=pauses.append).send(NOTE)
    assert not lost.ok and lost.attempts == 2 and lost.channel == "gone"
    assert "ConnectError" in (lost.error or "")


def test_email_plain_smtp() -> None:
    with smtp_server() as (port, box):
        channel = Email(EmailChannel("127.0.0.1", ("ops@example.org", "b@example.org"),
                                     "tain@example.org", port=port, security="none"))
        [delivery] = Dispatcher([channel]).send(NOTE)
    assert delivery.ok, delivery.error
    [message] = box.messages
    assert message["Subject"] == "[tain eu-1] FIRING: site mirror-2 is down: 503"
    assert box.envelopes == [("tain@example.org", ["ops@example.org", "b@example.org"])]
    assert "rule:     site_down" in message.get_payload()  # type: ignore[operator]


def test_email_with_starttls_and_login(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with smtp_server(tls_context=context, require_starttls=True, auth_required=True,
                     authenticator=accept_login("tain", "pw")) as (port, box):
        good = EmailChannel("127.0.0.1", ("ops@example.org",), "tain@example.org", port=port,
                            username="tain", password="pw", ca_file=str(cert))
        untrusted = EmailChannel("127.0.0.1", ("ops@example.org",), "x@example.org", port=port)
        results = Dispatcher([Email(good), Email(untrusted)], attempts=1).send(NOTE)
    assert [d.ok for d in results] == [True, False], results
    assert "CERTIFICATE_VERIFY_FAILED" in (results[1].error or "")
    assert len(box.messages) == 1
