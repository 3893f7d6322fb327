"""The pure parts of the agent, with plain values: debounce, site selection, pacing."""

from __future__ import annotations

import random

import pytest

from tain.agent.debounce import (
    Policy,
    batch_size,
    cutoffs,
    cycle_start_at,
    is_ready,
    ready_at,
    updated_rate,
)
from tain.agent.failover import SiteSelector
from tain.agent.throttle import Throttle

P = Policy(settle=0.05, quiet=0.25, max_delay=5.0, batch_wait=1.0)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- debounce ---------------------------------------------------------------------------


def test_a_closed_file_settles_quickly_a_written_one_waits_for_quiet() -> None:
    assert ready_at(first_at=10.0, last_at=10.0, writing=False, policy=P) == 10.05
    assert ready_at(first_at=10.0, last_at=10.0, writing=True, policy=P) == 10.25
    assert not is_ready(10.0, 10.0, True, 10.2, P)
    assert is_ready(10.0, 10.0, True, 10.25, P)


def test_a_continuous_writer_gets_a_snapshot_after_max_delay() -> None:
    # changed every 0.1 s since t=10: never quiet, but ready 5 s after the first change
    assert ready_at(first_at=10.0, last_at=14.99, writing=True, policy=P) == 15.0
    assert not is_ready(10.0, 14.9, True, 14.99, P)
    assert is_ready(10.0, 14.99, True, 15.0, P)


def test_cutoffs_say_the_same_as_is_ready() -> None:
    now = 100.0
    cut = cutoffs(now, P)
    for first_at, last_at, writing in [
        (99.0, 99.96, False), (99.0, 99.94, False), (99.0, 99.8, True), (99.0, 99.7, True),
        (94.9, 99.99, True), (95.1, 99.99, True), (0.0, 0.0, False),
    ]:
        by_cutoffs = (
            (not writing and last_at <= cut.settled_before)
            or (writing and last_at <= cut.quiet_before)
            or first_at <= cut.first_before
        )
        assert by_cutoffs == is_ready(first_at, last_at, writing, now, P)


def test_a_cycle_waits_for_calm_but_not_longer_than_batch_wait() -> None:
    assert cycle_start_at(None, 5.0, P) is None  # nothing queued
    assert cycle_start_at(10.0, None, P) == 10.0  # no event seen: go when ready
    assert cycle_start_at(10.0, 9.0, P) == 10.0  # calm since 9.05
    assert cycle_start_at(10.0, 10.5, P) == 10.55  # an event just now: wait for calm
    assert cycle_start_at(10.0, 12.0, P) == 11.0  # a burst goes on: at most batch_wait


def test_a_cycle_takes_cycle_seconds_of_work() -> None:
    assert batch_size(None, P) == P.first_batch == 400  # nothing measured yet
    assert batch_size(3000.0, P) == 1200  # 0.4 s of work
    assert batch_size(10.0, P) == 200 and batch_size(1e6, P) == 5000
    assert updated_rate(None, 1000, 2.0) == 500.0
    assert updated_rate(500.0, 1000, 1.0) == 750.0
    assert updated_rate(500.0, 3, 1.0) == 500.0  # too small a cycle to say anything


# --- failover ---------------------------------------------------------------------------


def selector(clock: Clock, *sites: str, cap: float = 30.0) -> SiteSelector:
    return SiteSelector(sites or ("a", "b", "c"), clock=clock, rng=random.Random(1), base=0.5,
                        cap=cap, failback=60.0)


def test_the_first_site_is_used_and_kept_while_it_works() -> None:
    clock = Clock()
    s = selector(clock)
    assert s.choose() == "a"
    s.succeeded("a")
    assert s.choose() == "a" and s.current == "a"


def test_a_failure_moves_on_in_order_then_everything_is_on_hold() -> None:
    clock = Clock()
    s = selector(clock)
    s.succeeded("a")
    s.failed("a", "refused")
    assert s.choose() == "b"
    s.failed("b", "timeout")
    assert s.choose() == "c"
    s.failed("c", "503")
    assert s.choose() is None
    wait = s.wait_time()
    assert 0.25 <= wait <= 0.5
    clock.now += wait
    assert s.choose() is not None
    assert s.health["b"].last_error == "timeout"


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    s = selector(Clock(), cap=4.0)
    for failures, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        for _ in range(20):
            assert full / 2 <= s.backoff(failures) <= full
    holds = {round(s.backoff(3), 6) for _ in range(20)}
    assert len(holds) > 10  # jitter: agents do not come back in step


def test_success_resets_the_backoff() -> None:
    clock = Clock()
    s = selector(clock, "a")
    for _ in range(6):
        s.failed("a", "down")
    assert s.health["a"].failures == 6
    clock.now += 100
    s.succeeded("a")
    assert s.health["a"].failures == 0
    assert 0.25 <= s.failed("a", "down again") <= 0.5


def test_a_preferred_site_is_probed_now_and_then_while_on_a_later_one() -> None:
    clock = Clock()
    s = selector(clock)
    s.failed("a", "down")
    s.succeeded("b")
    assert s.failback_candidate() is None  # not before the failback interval
    clock.now += 61
    assert s.failback_candidate() == "a"
    s.probed("a")
    assert s.failback_candidate() is None
    clock.now += 61
    assert s.failback_candidate() == "a"
    s.succeeded("a")
    assert s.current == "a" and s.failback_candidate() is None


def test_a_selector_needs_a_site() -> None:
    with pytest.raises(ValueError):
        SiteSelector([], clock=Clock(), rng=random.Random())


# --- throttle ---------------------------------------------------------------------------


def test_throttle_paces_requests_at_the_rate() -> None:
    clock = Clock(0.0)
    t = Throttle(1000.0, clock=clock)
    assert t.reserve(500) == 0.0  # the first goes at once
    assert t.reserve(500) == 0.5  # the next waits for the first's share
    assert t.reserve(1000) == 1.0
    clock.now = 10.0  # quiet for a while: no debt carried over
    assert t.reserve(100) == 0.0
    with pytest.raises(ValueError):
        Throttle(0)
