"""Health verdicts, rotation hysteresis, decaying counters, client regions and
Metalink documents: plain values in and out."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tain.core.health import Lag, Rotation, Thresholds, lag_of, next_rotation, staleness
from tain.core.metalink import MetalinkUrl, location_of, render_metalink
from tain.core.popularity import DecayingCounter
from tain.core.regions import RegionMap, client_address, parse_networks
from tain.errors import UsageError

LIMITS = Thresholds(max_lag_revisions=5, max_lag_seconds=600, fail_after=2, recover_after=2)


def run(results: list[bool], start: Rotation | None = None) -> list[bool]:
    state, seen = start, []
    for passed in results:
        state = next_rotation(state, passed, LIMITS)
        seen.append(state.in_rotation)
    return seen


@pytest.mark.parametrize(("results", "rotation"), [
    ([True], [True]),  # the first check decides
    ([False], [False]),
    ([True, False], [True, True]),  # one failure is not enough
    ([True, False, False], [True, True, False]),  # two are
    ([True, False, True, False], [True, True, True, True]),  # not consecutive
    ([False, True], [False, False]),  # one success is not enough to come back
    ([False, True, True], [False, False, True]),
    ([False, True, False, True, True], [False, False, False, False, True]),
    ([True, False, False, True, True, False, False], [True, True, False, False, True, True,
                                                       False]),
])
def test_rotation_hysteresis(results: list[bool], rotation: list[bool]) -> None:
    assert run(results) == rotation


def test_rotation_counts_runs() -> None:
    state = next_rotation(None, False, LIMITS)
    assert state == Rotation(False, 1, 0)
    state = next_rotation(state, False, LIMITS)
    assert state == Rotation(False, 2, 0)
    state = next_rotation(state, True, LIMITS)
    assert state == Rotation(False, 0, 1)


def test_thresholds_of_one_switch_at_once() -> None:
    quick = Thresholds(fail_after=1, recover_after=1)
    state = next_rotation(Rotation(True), False, quick)
    assert not state.in_rotation
    assert next_rotation(state, True, quick).in_rotation


@pytest.mark.parametrize(("site", "head", "first_missing", "now", "lag"), [
    (10, 10, None, 1000.0, Lag(0, 0.0)),
    (12, 10, None, 1000.0, Lag(0, 0.0)),  # ahead of what the primary said: not behind
    (9, 10, 900.0, 1000.0, Lag(1, 100.0)),
    (4, 10, 400.0, 1000.0, Lag(6, 600.0)),
    (9, 10, None, 1000.0, Lag(1, 0.0)),  # commit time unknown
    (9, 10, 1100.0, 1000.0, Lag(1, 0.0)),  # clocks disagree: never negative
])
def test_lag(site: int, head: int, first_missing: float | None, now: float, lag: Lag) -> None:
    assert lag_of(site, head, first_missing, now) == lag


@pytest.mark.parametrize(("lag", "stale"), [
    (Lag(0, 0), None),
    (Lag(5, 599), None),
    (Lag(6, 0), "stale: 6 revisions behind (limit 5)"),
    (Lag(1, 601), "stale: 1 revision(s) behind for 601 s (limit 600 s)"),
    (Lag(0, 10_000), None),  # seconds alone never make a site stale
])
def test_staleness(lag: Lag, stale: str | None) -> None:
    assert staleness(lag, LIMITS) == stale


def test_counter_decays_with_half_life() -> None:
    counter = DecayingCounter(half_life=60)
    for _ in range(8):
        counter.hit("a", 0.0)
    start = counter.per_minute("a", 0.0)
    assert counter.per_minute("a", 60.0) == pytest.approx(start / 2)
    assert counter.per_minute("a", 120.0) == pytest.approx(start / 4)
    assert counter.per_minute("missing", 0.0) == 0.0


def test_counter_estimates_a_steady_rate() -> None:
    counter = DecayingCounter(half_life=30)
    now = 0.0
    for _ in range(3000):  # 2 per second for 25 minutes
        now += 0.5
        rate = counter.hit("f", now)
    assert rate == pytest.approx(120, rel=0.05)


def test_counter_is_bounded_and_drops_the_coldest() -> None:
    counter = DecayingCounter(half_life=60, max_keys=100)
    for _ in range(50):
        counter.hit("hot", 0.0)
    for i in range(200):
        counter.hit(f"cold{i}", 1.0)
    assert len(counter) <= 100
    assert counter.per_minute("hot", 1.0) > 10


def test_counter_needs_a_positive_half_life() -> None:
    with pytest.raises(ValueError, match="half_life"):
        DecayingCounter(half_life=0)


REGIONS = RegionMap.parse({"10.0.0.0/8": "any10", "10.1.0.0/16": "eu", "10.1.2.0/24": "fr",
                           "2001:db8::/32": "v6"})


@pytest.mark.parametrize(("address", "region"), [
    ("10.1.2.3", "fr"),  # longest prefix wins
    ("10.1.3.3", "eu"),
    ("10.9.9.9", "any10"),
    ("192.0.2.1", None),
    ("2001:db8::1", "v6"),
    ("::ffff:10.1.3.3", "eu"),  # IPv4-mapped
    ("not an address", None),
    ("", None),
])
def test_region_of_by_longest_prefix(address: str, region: str | None) -> None:
    assert REGIONS.region_of(address) == region


def test_bad_networks_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a network"):
        RegionMap.parse({"10.1.0.0/33": "eu"})
    with pytest.raises(UsageError, match="not a network"):
        parse_networks(["proxy.example.org"])


TRUSTED = parse_networks(["127.0.0.0/8", "10.255.0.0/16"])


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("203.0.113.5", [], "203.0.113.5"),
    ("203.0.113.5", ["10.1.2.3"], "203.0.113.5"),  # untrusted peer: its header is ignored
    ("127.0.0.1", ["10.1.2.3"], "10.1.2.3"),
    ("127.0.0.1", ["6.6.6.6, 10.1.2.3"], "10.1.2.3"),  # the client cannot spoof the left
    ("127.0.0.1", ["10.1.2.3, 10.255.0.9"], "10.1.2.3"),  # skip trusted hops
    ("127.0.0.1", ["10.1.2.3", "10.255.0.9"], "10.1.2.3"),  # several header lines
    ("127.0.0.1", [], "127.0.0.1"),
    ("127.0.0.1", ["10.255.0.8, 10.255.0.9"], "10.255.0.8"),  # all trusted: the first
    ("127.0.0.1", ["garbage"], "127.0.0.1"),
])
def test_client_address_behind_trusted_proxies(peer: str, forwarded: list[str],
                                               client: str) -> None:
    assert client_address(peer, forwarded, TRUSTED) == client


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_address("127.0.0.1", ["10.1.2.3"], ()) == "127.0.0.1"


NS = {"m": "urn:ietf:params:xml:ns:metalink"}


def test_metalink_document() -> None:
    urls = [MetalinkUrl("http://a.example/r/x%20y.iso", 1, "de"),
            MetalinkUrl("http://b.example/r/x%20y.iso?a=1&b=2", 2, None)]
    text = render_metalink("x y.iso", 1234, "ab" * 32, urls, published=0.0,
                           generator="tain/test")
    root = ET.fromstring(text.encode())
    assert root.tag == "{urn:ietf:params:xml:ns:metalink}metalink"
    assert root.findtext("m:published", namespaces=NS) == "1970-01-01T00:00:00Z"
    (file,) = root.findall("m:file", NS)
    assert file.get("name") == "x y.iso"
    assert file.findtext("m:size", namespaces=NS) == "1234"
    digest = file.find("m:hash", NS)
    assert digest is not None and digest.get("type") == "sha-256" and digest.text == "ab" * 32
    got = [(u.text, u.get("priority"), u.get("location")) for u in file.findall("m:url", NS)]
    assert got == [("http://a.example/r/x%20y.iso", "1", "de"),
                   ("http://b.example/r/x%20y.iso?a=1&b=2", "2", None)]


@pytest.mark.parametrize(("region", "location"), [
    ("DE", "de"), ("us", "us"), ("eu-west", None), ("", None), ("e1", None),
])
def test_metalink_location_only_for_country_codes(region: str, location: str | None) -> None:
    assert location_of(region) == location
