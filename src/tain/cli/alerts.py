"""``tain alerts``: open and recent alerts; ``test`` and ``check``; and the alerts
section of ``tain status`` (which exits 1 while any alert is open)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt, connect
from tain.cli.output import Col, emit_json, emit_rows, note, say, timestamp
from tain.errors import RemoteError

ALERTS_OPEN_EXIT = 1
ALERT_COLUMNS = (
    Col("state", "state"),
    Col("severity", "severity"),
    Col("rule", "rule"),
    Col("subject", "subject"),
    Col("since (UTC)", "opened_at", timestamp),
    Col("resolved (UTC)", "resolved_at", timestamp),
    Col("sent", "sends", justify="right"),
    Col("message", "message"),
)
DELIVERY_COLUMNS = (
    Col("channel", "channel"),
    Col("ok", "ok", lambda v: "yes" if v else "NO"),
    Col("attempts", "attempts", justify="right"),
    Col("error", "error"),
)

alerts_app = typer.Typer(
    help="Open and recent alerts; 'tain alerts test' tries every channel.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
def alerts(ctx: typer.Context, site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None,
           limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
           as_json: JsonOpt = False) -> None:
    """Open alerts, then the recently resolved ones."""
    if ctx.invoked_subcommand is not None:
        return
    with connect(site, token) as client:
        body = client.alerts(limit=limit)
    rows = [*(body.get("open") or []), *(body.get("recent") or [])]
    emit_rows(rows, ALERT_COLUMNS, as_json=as_json)


@alerts_app.command("test")
def test(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Send a test message to every configured channel; fails if one did not take it."""
    with connect(site, token) as client:
        deliveries = client.test_alerts().get("deliveries") or []
    if as_json:
        emit_json(deliveries)
    elif deliveries:
        emit_rows(deliveries, DELIVERY_COLUMNS, as_json=False)
    else:
        note("no alert channels are configured ([[alerts.webhook]], [[alerts.email]])")
    failed = [d.get("channel") for d in deliveries if not d.get("ok")]
    if failed:
        raise RemoteError(f"the test message did not reach {', '.join(map(str, failed))}")


@alerts_app.command("check")
def check(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Evaluate the alert rules now and list the open alerts."""
    with connect(site, token) as client:
        body = client.check_alerts()
    if as_json:
        emit_json(body)
        return
    emit_rows(body.get("open") or [], ALERT_COLUMNS, as_json=False)


def report_open(body: dict[str, Any], *, as_json: bool) -> None:
    """The alerts section of ``tain status``; exit 1 while any alert is open."""
    open_alerts = body.get("alerts") or []
    if not as_json:
        if open_alerts:
            say(f"alerts:      {len(open_alerts)} OPEN")
            emit_rows(open_alerts, ALERT_COLUMNS[1:5] + ALERT_COLUMNS[-1:], as_json=False)
        else:
            say("alerts:      none open")
    if open_alerts:
        raise typer.Exit(ALERTS_OPEN_EXIT)
