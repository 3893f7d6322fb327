"""Statistics with charts. Each chart is a function of (viewer, end time, days) that
returns a ``Chart``; the page draws every function in ``CHARTS`` (static/charts.js
turns the JSON into Chart.js charts). Add one with ``add_chart``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tain.core.charts import DAY, Chart, daily_sums, day_labels, day_range
from tain.server.console.render import ConsoleRoute, page
from tain.server.console.viewer import Viewer, ViewerDep

router = APIRouter(route_class=ConsoleRoute)
ChartMaker = Callable[[Viewer, float, int], Chart]
CHARTS: list[ChartMaker] = []


def add_chart(maker: ChartMaker) -> ChartMaker:
    CHARTS.append(maker)
    return maker


@router.get("/stats")
def stats(request: Request, viewer: ViewerDep,
          days: int = Query(30, ge=1, le=366)) -> Response:
    end = viewer.state.site.clock()
    charts = [maker(viewer, end, days).to_json() for maker in CHARTS]
    return page(request, "stats.html", viewer, charts=charts, days=days,
                popular=popular_files(viewer, end, days))


def popular_files(viewer: Viewer, end: float, days: int, limit: int = 20) -> list[Any]:
    """The most downloaded files of the period in repositories the viewer can read."""
    readable = {r.name for r in viewer.readable_repos()}
    since, until = day_range(end, days)
    rows = viewer.state.site.catalog.popular_paths(since=since, until=until, limit=limit * 4)
    return [r for r in rows if r.repo in readable][:limit]


def _commit_points(viewer: Viewer, end: float, days: int) -> list[tuple[str, float, int]]:
    readable = {r.name for r in viewer.readable_repos()}
    since = end - days * DAY
    return [(a.repo, a.created_at, a.bytes_added)
            for a in viewer.state.site.catalog.commit_activity(since=since)
            if a.repo in readable]


@add_chart
def revisions_per_day(viewer: Viewer, end: float, days: int) -> Chart:
    points = [(repo, at, 1.0) for repo, at, _ in _commit_points(viewer, end, days)]
    return Chart("revisions", "Revisions per day", day_labels(end, days),
                 daily_sums(points, end=end, days=days))


@add_chart
def bytes_per_day(viewer: Viewer, end: float, days: int) -> Chart:
    points = [(repo, at, float(size)) for repo, at, size in _commit_points(viewer, end, days)]
    return Chart("bytes", "Bytes committed per day", day_labels(end, days),
                 daily_sums(points, end=end, days=days), unit="bytes")
