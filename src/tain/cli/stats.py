"""``tain stats``: downloads, popular files and pushes per day, from the site's counters."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt, connect
from tain.cli.output import Col, emit_json, emit_rows, human_size, note

DAY_COLUMNS = (
    Col("day (UTC)", "day"),
    Col("site", "site"),
    Col("repository", "repo"),
    Col("downloads", "downloads", justify="right"),
    Col("served", "bytes", human_size, justify="right"),
)
POPULAR_COLUMNS = (
    Col("#", "rank", justify="right"),
    Col("repository", "repo"),
    Col("path", "path"),
    Col("downloads", "downloads", justify="right"),
    Col("served", "bytes", human_size, justify="right"),
)
PUSH_COLUMNS = (
    Col("day (UTC)", "day"),
    Col("site", "site"),
    Col("repository", "repo"),
    Col("commits", "commits", justify="right"),
    Col("received", "bytes_received", human_size, justify="right"),
    Col("files changed", "files_changed", justify="right"),
    Col("latency avg", "latency_avg", lambda v: f"{v:.3f} s" if v is not None else "-",
        justify="right"),
    Col("latency max", "latency_max", lambda v: f"{v:.3f} s", justify="right"),
)

DaysOpt = Annotated[int, typer.Option("--days", min=1, max=3660, help="Days back from today.")]
RepoFilter = Annotated[str | None, typer.Option("--repo", "-r", help="Only this repository.")]
SiteFilter = Annotated[str | None, typer.Option("--site-name", help="Only this site's rows.")]

stats_app = typer.Typer(
    help="Usage statistics: downloads (default), popular files, pushes.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(stats_app, name="stats")


def _query(url: str, token: str | None, kind: str, **params: Any) -> dict[str, Any]:
    with connect(url, token) as client:
        return client.stats(kind, **params)


@stats_app.callback()
def stats(ctx: typer.Context, site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None,
          days: DaysOpt = 30, repo: RepoFilter = None, site_name: SiteFilter = None,
          as_json: JsonOpt = False) -> None:
    """Downloads and bytes served per day (and site and repository)."""
    if ctx.invoked_subcommand is None:
        downloads(site, token, days, repo, site_name, as_json)


@stats_app.command("downloads")
def downloads(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, days: DaysOpt = 30,
              repo: RepoFilter = None, site_name: SiteFilter = None,
              as_json: JsonOpt = False) -> None:
    """Downloads and bytes served per day (and site and repository)."""
    body = _query(site, token, "downloads", days=days, repo=repo, site=site_name)
    if as_json:
        emit_json(body)
        return
    emit_rows(body.get("days") or [], DAY_COLUMNS, as_json=False)
    total = body.get("total") or {}
    note(f"{body.get('since')} .. {body.get('until')}: {total.get('downloads', 0)} downloads, "
         f"{human_size(total.get('bytes', 0))} served")


@stats_app.command("popular")
def popular(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, days: DaysOpt = 30,
            repo: RepoFilter = None, site_name: SiteFilter = None,
            limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
            as_json: JsonOpt = False) -> None:
    """The most downloaded files over the days."""
    body = _query(site, token, "popular", days=days, repo=repo, site=site_name, limit=limit)
    if as_json:
        emit_json(body)
        return
    rows = [{**row, "rank": n} for n, row in enumerate(body.get("paths") or [], 1)]
    emit_rows(rows, POPULAR_COLUMNS, as_json=False)


@stats_app.command("pushes")
def pushes(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, days: DaysOpt = 30,
           repo: RepoFilter = None, site_name: SiteFilter = None,
           as_json: JsonOpt = False) -> None:
    """Commits, bytes received, files changed and commit latency per day."""
    body = _query(site, token, "pushes", days=days, repo=repo, site=site_name)
    if as_json:
        emit_json(body)
        return
    emit_rows(body.get("days") or [], PUSH_COLUMNS, as_json=False)
