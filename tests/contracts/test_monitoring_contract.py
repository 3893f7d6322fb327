"""The catalog's statistics and alert state, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading

import pytest

from tain.catalog.sql import SqlCatalog, open_catalog
from tain.catalog.stats import DownloadCount, PathCount, PushCount
from tain.core.alerts import Alert
from tain.core.histogram import LATENCY_BUCKETS
from tain.errors import NotFound
from tests.catalog import conftest as fixtures
from tests.catalog.conftest import FakeClock

backend = fixtures.backend
db_url = fixtures.db_url
clock = fixtures.clock
catalog = fixtures.catalog

D1, D2, D3 = "2027-01-14", "2027-01-15", "2027-01-16"


def buckets(**at: int) -> tuple[int, ...]:
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    for index, n in at.items():
        counts[int(index.removeprefix("b"))] = n
    return tuple(counts)


def test_download_counts_add_up_per_day_site_and_repo(catalog: SqlCatalog) -> None:
    catalog.add_usage([DownloadCount(D1, "eu", "www", 2, 200), DownloadCount(D2, "eu", "www", 1,
                                                                             10)], [], [])
    catalog.add_usage([DownloadCount(D1, "eu", "www", 3, 300), DownloadCount(D1, "us", "www", 1,
                                                                             1),
                       DownloadCount(D1, "eu", "iso", 1, 7)], [], [])
    rows = catalog.download_stats(since=D1)
    assert [(r.day, r.site, r.repo, r.downloads, r.bytes) for r in rows] == [
        (D1, "eu", "iso", 1, 7), (D1, "eu", "www", 5, 500), (D1, "us", "www", 1, 1),
        (D2, "eu", "www", 1, 10)]
    assert [r.downloads for r in catalog.download_stats(since=D1, until=D1, repo="www",
                                                        site="eu")] == [5]
    assert catalog.download_stats(since=D3) == []
    assert catalog.prune_stats(before=D2) == 3
    assert [r.day for r in catalog.download_stats(since=D1)] == [D2]


def test_popular_paths_sum_over_days_and_stay_capped(catalog: SqlCatalog) -> None:
    def paths(day: str, **counts: int) -> list[PathCount]:
        return [PathCount(day, "eu", "www", p.replace("_", "."), n, n * 10)
                for p, n in counts.items()]

    catalog.add_usage([], paths(D1, a_iso=5, b_iso=3, c_iso=1), [], popular_cap=3)
    catalog.add_usage([], paths(D1, a_iso=1, d_iso=1), [], popular_cap=3)  # d ties c: stays out
    catalog.add_usage([], paths(D2, c_iso=9), [], popular_cap=3)
    top = catalog.popular_paths(since=D1)
    assert [(p.path, p.downloads, p.bytes) for p in top] == [
        ("c.iso", 10, 100), ("a.iso", 6, 60), ("b.iso", 3, 30)]
    assert [p.path for p in catalog.popular_paths(since=D1, until=D1, limit=2)] == [
        "a.iso", "b.iso"]
    # a path counted more than the least one takes its place, inheriting its count
    catalog.add_usage([], paths(D1, e_iso=4), [], popular_cap=3)
    day1 = catalog.popular_paths(since=D1, until=D1)
    assert [(p.path, p.downloads) for p in day1] == [("a.iso", 6), ("e.iso", 5), ("b.iso", 3)]
    assert catalog.popular_paths(since=D1, repo="other") == []


def test_push_stats_keep_sums_max_and_latency_buckets(catalog: SqlCatalog) -> None:
    catalog.add_usage([], [], [PushCount(D1, "eu", "www", 2, 1000, 7, 0.5, 0.4, buckets(b3=1,
                                                                                        b5=1))])
    catalog.add_usage([], [], [PushCount(D1, "eu", "www", 1, 24, 1, 2.0, 2.0, buckets(b8=1)),
                               PushCount(D2, "eu", "www", 1, 1, 1, 0.1, 0.1, buckets(b4=1))])
    [first, second] = catalog.push_stats(since=D1)
    assert (first.commits, first.bytes_received, first.files_changed) == (3, 1024, 8)
    assert first.latency_sum == pytest.approx(2.5) and first.latency_max == 2.0
    assert first.buckets == buckets(b3=1, b5=1, b8=1)
    assert second.buckets == buckets(b4=1)
    assert first.to_json()["latency_avg"] == pytest.approx(2.5 / 3)


def test_concurrent_writers_lose_no_counts(db_url: str, catalog: SqlCatalog,
                                           clock: FakeClock) -> None:
    others = [open_catalog(db_url, clock=clock) for _ in range(3)]

    def add(cat: SqlCatalog) -> None:
        for _ in range(10):
            cat.add_usage([DownloadCount(D1, "eu", "www", 1, 2)],
                          [PathCount(D1, "eu", "www", "f", 1, 2)], [])

    threads = [threading.Thread(target=add, args=(c,)) for c in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in others:
        c.close()
    [row] = catalog.download_stats(since=D1)
    assert (row.downloads, row.bytes) == (30, 60)
    assert catalog.popular_paths(since=D1)[0].downloads == 30


def test_alert_state_open_update_resolve_prune(catalog: SqlCatalog, clock: FakeClock) -> None:
    down = Alert("site_down", "eu", "site eu is down", details={"why": "refused"})
    record = catalog.open_alert(down, sent=True)
    assert record.is_open and record.last_sent_at == clock.now and record.sends == 1
    assert record.details == {"why": "refused"}
    unsent = catalog.open_alert(Alert("disk_free", "/d", "low", "warning"), sent=False)
    assert unsent.last_sent_at is None and unsent.sends == 0
    clock.advance(60)
    catalog.update_alert(record.id, Alert("site_down", "eu", "site eu is down: 503"), sent=True)
    catalog.update_alert(unsent.id, Alert("disk_free", "/d", "lower", "warning"), sent=False)
    now_open = {a.key: a for a in catalog.list_alerts(open_only=True)}
    assert now_open["site_down:eu"].message.endswith("503")
    assert now_open["site_down:eu"].sends == 2 and now_open["site_down:eu"].last_sent_at == \
        clock.now
    assert now_open["disk_free:/d"].sends == 0 and now_open["disk_free:/d"].message == "lower"
    clock.advance(60)
    catalog.resolve_alert(record.id)
    with pytest.raises(NotFound):
        catalog.resolve_alert(record.id)
    with pytest.raises(NotFound):
        catalog.update_alert(record.id, down, sent=True)
    listed = catalog.list_alerts()
    assert [(a.key, a.is_open) for a in listed] == [("disk_free:/d", True),
                                                    ("site_down:eu", False)]
    assert listed[1].resolved_at == clock.now
    assert catalog.prune_alerts(resolved_before=clock.now) == 0
    assert catalog.prune_alerts(resolved_before=clock.now + 1) == 1
    assert [a.key for a in catalog.list_alerts()] == ["disk_free:/d"]
