"""Pure pieces of the console: the sign-in failure limiter and per-day chart series."""

from __future__ import annotations

from tain.core.charts import DAY, Chart, daily_sums, day_labels, day_start
from tain.core.ratelimit import FailureLimiter

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_limiter_blocks_after_max_failures_until_the_oldest_ages_out() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock)
    for step in range(3):
        assert limiter.retry_after("alice") == 0
        limiter.fail("alice")
        clock.now += 10 * (step + 1)  # failures at +0, +10, +30
    clock.now = T0 + 40
    assert limiter.retry_after("alice") == 20  # the first failure ages out at +60
    assert limiter.retry_after("bob") == 0  # keys are independent
    assert limiter.retry_after("bob", "alice") == 20
    clock.now = T0 + 60
    assert limiter.retry_after("alice") == 0
    limiter.fail("alice")  # +0 dropped: failures at +10, +30, +60
    assert limiter.retry_after("alice") == 10


def test_limiter_clear_and_bounded_memory() -> None:
    clock = Clock()
    limiter = FailureLimiter(2, 60, clock, max_keys=10)
    limiter.fail("alice")
    limiter.fail("alice")
    assert limiter.retry_after("alice") > 0
    limiter.clear("alice")
    assert limiter.retry_after("alice") == 0
    for n in range(10):
        limiter.fail(f"old{n}")
    clock.now += 61
    limiter.fail("new")  # the table is full: stale keys are dropped first
    assert len(limiter._failures) == 1


def test_day_labels_end_with_the_day_of_end() -> None:
    assert day_labels(T0, 3) == ["2027-01-13", "2027-01-14", "2027-01-15"]
    assert day_start(T0) == T0 - 8 * 3600


def test_daily_sums_bucket_by_utc_day_and_ignore_outside_points() -> None:
    points = [
        ("docs", T0, 5.0), ("docs", T0 - 3600, 1.0),  # both on the 15th
        ("docs", T0 - DAY, 2.0), ("isos", T0 - 2 * DAY, 7.0),
        ("docs", T0 - 3 * DAY, 100.0), ("docs", T0 + DAY, 100.0),  # outside
    ]
    assert daily_sums(points, end=T0, days=3) == {"docs": [0.0, 2.0, 6.0],
                                                  "isos": [7.0, 0.0, 0.0]}
    assert daily_sums([], end=T0, days=3) == {}


def test_chart_json_sorts_datasets() -> None:
    chart = Chart("c", "C", ["a"], {"b": [1.0], "a": [2.0]}, unit="bytes")
    assert [d["label"] for d in chart.to_json()["datasets"]] == ["a", "b"]
    assert chart.to_json()["unit"] == "bytes"
