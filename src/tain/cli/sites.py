"""``tain sites`` and the "sites" section of ``tain status``: every site of the
network, up or down and why, its revision and lag per repository, whether it is in
the redirector's rotation, and when it was last checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt, connect
from tain.cli.output import Col, emit_json, emit_table, human_size, say, timestamp

ATTENTION_EXIT = 1  # tain status / tain sites: something needs attention

COLUMNS = (
    Col("site", "site"),
    Col("region", "region"),
    Col("state", "state"),
    Col("repository", "repo"),
    Col("revision", "revision", justify="right"),
    Col("lag", "lag", justify="right"),
    Col("rotation", "rotation"),
    Col("last check", "last_check", timestamp),
    Col("why", "reason"),
)


def register(app: typer.Typer) -> None:
    app.command("sites")(sites)


def sites(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """The sites this site checks: health, revision and lag per repository, rotation.
    Exits with 1 when a site needs attention (down, stale, serving wrong bytes)."""
    with connect(site, token) as client:
        rows = client.sites()
    if as_json:
        emit_json(rows)
    elif rows:
        show_sites(rows)
    else:
        say("no sites configured ([[sites]] in tain.toml)")
    exit_if_attention(rows)


def show_sites(rows: Sequence[dict[str, Any]]) -> None:
    """The section ``tain status`` prints: one line per site and repository."""
    if not rows:
        return
    say("sites:")
    emit_table(table_rows(rows), COLUMNS)
    for row in rows:
        if row.get("throughput"):
            say(f"  {row['name']}: sample downloads at {human_size(row['throughput'])}/s, "
                f"API answered in {row.get('latency_ms') or 0:.0f} ms")


def table_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        state = {True: "up", False: "DOWN", None: "unchecked"}[row.get("up")]
        name = row["name"] + (" (primary)" if row.get("primary") else "")
        base = {"site": name, "region": row.get("region") or "-", "state": state}
        repos = row.get("repos") or []
        if not repos:
            out.append({**base, "repo": "-", "revision": "-", "lag": "-", "rotation": "OUT",
                        "last_check": row.get("last_check"), "reason": row.get("reason")})
        for repo in repos:
            out.append({
                **base, "repo": repo["repo"], "revision": _text(repo.get("revision")),
                "lag": lag_text(repo), "rotation": "in" if repo.get("in_rotation") else "OUT",
                "last_check": repo.get("last_check"), "reason": repo.get("reason"),
            })
    return out


def lag_text(repo: dict[str, Any]) -> str:
    revisions, seconds = repo.get("lag_revisions"), repo.get("lag_seconds")
    if revisions is None:
        return "-"
    if not revisions:
        return "0"
    return f"{revisions} rev, {seconds or 0:.0f} s"


def needs_attention(rows: Sequence[dict[str, Any]]) -> bool:
    return any(row.get("attention") for row in rows)


def exit_if_attention(rows: Sequence[dict[str, Any]]) -> None:
    if needs_attention(rows):
        raise typer.Exit(ATTENTION_EXIT)


def _text(value: Any) -> str:
    return "-" if value is None else str(value)
