"""The network and usage parts of the console: overview panels for the other sites'
health, the pull-source jobs and the open alerts, and charts of downloads, bytes
served, push latency and mirror lag (from the statistics the site aggregates and the
health checks' history)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tain.core.charts import DAY, Chart, daily_sums, day_at, day_labels, day_range
from tain.core.histogram import day_of
from tain.mirror.redirector import HealthSnapshot
from tain.mirror.report import site_reports
from tain.server.console.nav import Panel, add_panel
from tain.server.console.stats import add_chart
from tain.server.console.viewer import Viewer

router = APIRouter()  # no pages of its own: panels and charts plug into the others


def sites_panel(viewer: Viewer) -> dict[str, Any]:
    site = viewer.state.site
    config = site.config.redirector
    if config is None or not config.active:
        return {"sites": [], "configured": False}
    checks, repos = site.catalog.site_health()
    snap = HealthSnapshot({c.site: c for c in checks}, {(r.site, r.repo): r for r in repos})
    readable = {r.name for r in viewer.readable_repos()}
    rows = site_reports(config, snap, visible=lambda repo: repo in readable,
                        load=lambda _spec: None)
    return {"sites": rows, "configured": True}


def sources_panel(viewer: Viewer) -> dict[str, Any]:
    """Pull-source jobs (docs/sources.md) of repositories the viewer can read."""
    readable = {r.name for r in viewer.readable_repos()}
    jobs = [j.to_json()
            for j in viewer.state.site.catalog.list_sources() if j.repo in readable]
    return {"jobs": jobs}


def alerts_panel(viewer: Viewer) -> dict[str, Any]:
    return {"alerts": viewer.state.site.catalog.list_alerts(open_only=True, limit=50)}


@add_chart
def downloads_per_day(viewer: Viewer, end: float, days: int) -> Chart:
    points = [(c.repo, day_at(c.day), float(c.downloads)) for c in _downloads(viewer, end, days)]
    return Chart("downloads", "Downloads per day, per repository", day_labels(end, days),
                 daily_sums(points, end=end, days=days))


@add_chart
def bytes_served_per_day(viewer: Viewer, end: float, days: int) -> Chart:
    points = [(c.site, day_at(c.day), float(c.bytes)) for c in _downloads(viewer, end, days)]
    return Chart("served", "Bytes served per day, per site", day_labels(end, days),
                 daily_sums(points, end=end, days=days), unit="bytes")


@add_chart
def commit_latency_per_day(viewer: Viewer, end: float, days: int) -> Chart:
    """The mean commit latency (seconds) per day and repository."""
    readable = {r.name for r in viewer.readable_repos()}
    since, until = day_range(end, days)
    pushes = [p for p in viewer.state.site.catalog.push_stats(since=since, until=until)
              if p.repo in readable]
    sums = daily_sums([(p.repo, day_at(p.day), p.latency_sum) for p in pushes], end=end, days=days)
    counts = daily_sums([(p.repo, day_at(p.day), float(p.commits)) for p in pushes],
                        end=end, days=days)
    means = {repo: [s / n if n else 0.0 for s, n in zip(values, counts[repo], strict=True)]
             for repo, values in sums.items()}
    return Chart("latency", "Mean commit latency per day (s)", day_labels(end, days), means,
                 kind="line")


@add_chart
def mirror_lag_per_day(viewer: Viewer, end: float, days: int) -> Chart:
    """The largest lag in revisions each site showed per day (any repository)."""
    readable = {r.name for r in viewer.readable_repos()}
    samples = viewer.state.site.catalog.lag_history(since=end - days * DAY, limit=10000)
    labels = day_labels(end, days)
    column = {label: i for i, label in enumerate(labels)}
    worst: dict[str, list[float]] = {}
    for s in samples:
        i = column.get(day_of(s.at))
        if i is None or s.repo not in readable or s.lag_revisions is None:
            continue
        row = worst.setdefault(s.site, [0.0] * days)
        row[i] = max(row[i], float(s.lag_revisions))
    return Chart("lag", "Largest mirror lag per day (revisions)", labels, worst, kind="line")


def _downloads(viewer: Viewer, end: float, days: int) -> list[Any]:
    readable = {r.name for r in viewer.readable_repos()}
    since, until = day_range(end, days)
    return [c for c in viewer.state.site.catalog.download_stats(since=since, until=until)
            if c.repo in readable]


add_panel(Panel("sites", "Sites", sites_panel))
add_panel(Panel("sources", "Pull sources", sources_panel))
add_panel(Panel("alerts", "Open alerts", alerts_panel, admin_only=True))
