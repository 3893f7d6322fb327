"""``tain status``: one look at a site's health, through its API (site admins)."""

from __future__ import annotations

from typing import Any

import typer

from tain.cli import alerts
from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt, connect
from tain.cli.mirror import show_mirror
from tain.cli.output import Col, emit_json, emit_table, human_size, say, timestamp
from tain.cli.sites import ATTENTION_EXIT, exit_if_attention, needs_attention, show_sites
from tain.cli.sources_status import show_sources

REPO_COLUMNS = (
    Col("repository", "name"),
    Col("head", "head", justify="right"),
    Col("files", "files", justify="right"),
    Col("size", "bytes", human_size, justify="right"),
)
DIR_COLUMNS = (
    Col("data dir", "path"),
    Col("state", "state"),
    Col("used", "used_bytes", human_size, justify="right"),
    Col("free", "free_bytes", human_size, justify="right"),
    Col("disk", "total_bytes", human_size, justify="right"),
)


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Repositories, blob store and disks, last scrub and backup, schedules, sites, open
    alerts. Exits with 1 when something needs attention: an open alert, or a site down,
    stale or out of rotation."""
    with connect(site, token) as client:
        body = client.status()
    if as_json:
        emit_json(body)
        exit_if_attention(body.get("sites") or [])
        alerts.report_open(body, as_json=True)
        return
    say(f"site {site}: tain {body.get('version')}, {body.get('catalog')} catalog")
    repos = body.get("repos") or []
    if repos:
        emit_table(repos, REPO_COLUMNS)
    else:
        say("no repositories")
    show_store(body.get("store") or {})
    say(f"last scrub:  {scrub_line(body.get('last_scrub'))}")
    say(f"last backup: {backup_line(body.get('last_backup'))}")
    say(f"gc grace:    {duration(body.get('gc_grace_seconds'))}")
    for name, line in schedule_lines(body.get("schedules") or {}):
        say(f"{name + ':':<12} {line}")
    show_sources(body)
    show_mirror(body.get("mirror") or {})
    show_sites(body.get("sites") or [])
    attention = needs_attention(body.get("sites") or [])
    alerts.report_open(body, as_json=False)  # last: exits 1 while an alert is open
    if attention:
        raise typer.Exit(ATTENTION_EXIT)


def show_store(store: dict[str, Any]) -> None:
    count = store.get("copies")
    copies = "" if count is None else (
        ", 1 copy of each" if count == 1 else f", {count} copies of each")
    say(f"blob store:  {store.get('kind')}, {store.get('blobs')} blobs, "
        f"{human_size(store.get('bytes'))}{copies}")
    dirs = [{**d, "state": "ok" if d.get("available") else "UNAVAILABLE"}
            for d in store.get("data_dirs") or []]
    if dirs:
        emit_table(dirs, DIR_COLUMNS)


def scrub_line(last: dict[str, Any] | None) -> str:
    if not last:
        return "never"
    verdict = "ok" if last.get("ok") else f"{last.get('unrepaired')} blob(s) NOT repaired"
    partial = "" if last.get("complete", True) else ", interrupted"
    return (f"{timestamp(last.get('at'))} by {last.get('actor')}: {verdict}, "
            f"{last.get('blobs_checked')} blobs, {last.get('repaired', 0)} repaired, "
            f"{duration(last.get('duration'))}{partial}")


def backup_line(last: dict[str, Any] | None) -> str:
    if not last:
        return "never"
    return (f"{timestamp(last.get('at'))} by {last.get('actor')}: {last.get('path')}, "
            f"{last.get('blobs')} blobs ({last.get('blobs_copied')} copied, "
            f"{human_size(last.get('bytes_copied'))})")


def schedule_lines(schedules: dict[str, Any]) -> list[tuple[str, str]]:
    lines = []
    for name in ("scrub", "backup"):
        item = schedules.get(name) or {}
        every = item.get("every_seconds")
        if not every:
            lines.append((name, "not scheduled"))
            continue
        extra = []
        if name == "scrub":
            extra.append(f"fraction {item.get('fraction')}")
            if item.get("rate_limit_bytes"):
                extra.append(f"at most {human_size(item['rate_limit_bytes'])}/s")
        else:
            extra.append(f"to {item.get('dest')}, keep {item.get('keep')}")
        if item.get("next_due"):
            extra.append(f"next {timestamp(item['next_due'])}")
        lines.append((name, f"every {duration(every)} (" + ", ".join(extra) + ")"))
    return lines


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:.1f} s" if isinstance(seconds, float) else f"{seconds} s"
