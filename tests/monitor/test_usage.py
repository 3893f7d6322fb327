"""Usage counted in memory: per-day deltas drained for the catalog, lifetime totals for
/metrics, and a bounded number of tracked paths."""

from __future__ import annotations

from tain.service.usage import Usage
from tests.catalog.conftest import DAY, START, FakeClock


def test_counts_are_drained_once_per_day_and_totals_stay() -> None:
    clock = FakeClock(START)
    usage = Usage("eu", clock=clock)
    usage.download("www", "a", 100)
    usage.download("www", "a", 50, whole=False)  # a range: bytes, no download
    usage.received("www", 1000)
    usage.committed("www", 3, 0.2)
    clock.advance(DAY)
    usage.download("www", "b", 7)
    batch = usage.drain()
    assert sorted((d.day, d.downloads, d.bytes) for d in batch.downloads) == [
        ("2027-01-15", 1, 150), ("2027-01-16", 1, 7)]
    assert sorted((p.path, p.downloads, p.bytes) for p in batch.popular) == [
        ("a", 1, 100), ("b", 1, 7)]
    [push] = batch.pushes
    assert (push.commits, push.bytes_received, push.files_changed) == (1, 1000, 3)
    assert push.latency_max == 0.2 and sum(push.buckets) == 1
    assert not usage.drain()
    totals = usage.totals()
    assert totals.downloads == {"www": 2} and totals.download_bytes == {"www": 157}
    assert totals.push_bytes == {"www": 1000} and totals.commits["www"].count == 1


def test_tracked_paths_are_capped_with_space_saving() -> None:
    usage = Usage("eu", popular_cap=2, clock=FakeClock())
    for path in ["hot"] * 5 + ["warm"] * 2 + ["new"]:
        usage.download("www", path, 1)
    paths = {p.path: p.downloads for p in usage.drain().popular}
    assert paths == {"hot": 5, "new": 3}  # "new" took "warm"'s place and its count
