"""The console's views of the rest of the system: downloads counted by the site show
up in the statistics page (chart and most downloaded files), pull-source jobs and open
alerts appear as overview panels, and a reader sees no admin-only panel."""

from __future__ import annotations

import json
import re

from tain.core.alerts import Alert
from tests.console.conftest import READER_PASSWORD, ConsoleSite


def _chart(html: str, chart_id: str) -> dict[str, object]:
    found = re.search(
        rf'<script type="application/json" id="chart-data-{chart_id}">(.*?)</script>',
        html, re.S)
    assert found, f"no chart {chart_id} on the page"
    return dict(json.loads(found.group(1)))


def test_downloads_appear_in_the_statistics_page(console_site: ConsoleSite) -> None:
    with console_site.api() as api:
        for _ in range(3):
            assert api.get("/docs/notes.txt").status_code == 200
        assert api.get("/docs/guide/readme.txt").status_code == 200
        assert api.post("/api/v1/stats/flush").status_code == 200
    with console_site.sign_in() as client:
        page = client.get("/console/stats?days=7")
    assert page.status_code == 200
    downloads = _chart(page.text, "downloads")
    series = {d["label"]: d["data"] for d in downloads["datasets"]}  # type: ignore[index,union-attr]
    assert sum(series["docs"]) >= 4  # today's column counts every download above
    table = page.text.split("Most downloaded files", 1)[1]
    assert table.index("notes.txt") < table.index("guide/readme.txt")  # 3 before 1
    for chart_id in ("served", "latency", "lag", "revisions"):
        _chart(page.text, chart_id)


def test_overview_shows_sources_and_open_alerts_to_admins_only(
    console_site: ConsoleSite,
) -> None:
    catalog = console_site.site.catalog
    record = catalog.open_alert(
        Alert("disk_low", "/srv/blobs", "free disk below 5% on /srv/blobs", "critical"),
        sent=True)
    with console_site.api() as api:
        added = api.post("/api/v1/sources", json={
            "name": "upstream-docs", "repo": "docs", "kind": "http",
            "url": "http://127.0.0.1:9/docs/", "every": "1h"})
        assert added.status_code == 201, added.text
    try:
        with console_site.sign_in() as admin:
            alerts = admin.get("/console/panels/alerts")
            sources = admin.get("/console/panels/sources")
            sites = admin.get("/console/panels/sites")
        assert alerts.status_code == 200 and "free disk below 5%" in alerts.text
        assert sources.status_code == 200 and "upstream-docs" in sources.text
        assert sites.status_code == 200 and "No other sites configured" in sites.text
        with console_site.sign_in("reader", READER_PASSWORD) as reader:
            assert reader.get("/console/panels/alerts").status_code == 404
            overview = reader.get("/console/")
            assert "free disk below 5%" not in overview.text
            assert "upstream-docs" in overview.text  # a job of a repository they can read
    finally:
        catalog.resolve_alert(record.id)
        with console_site.api() as api:
            api.delete("/api/v1/sources/upstream-docs")
