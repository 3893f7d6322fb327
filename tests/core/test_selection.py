"""The selection policy (tain.core.selection): plain values in, ranked sites out."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tain.core.selection import (
    Candidate,
    SelectionPolicy,
    Tier,
    rank_sites,
    spread,
    tier_of,
)

POLICY = SelectionPolicy(neighbours={"eu": ("uk",), "us": ("ca",)}, popular_per_minute=60)


def site(name: str, region: str, *, capacity: float = 100, revision: int | None = 10,
         in_rotation: bool = True, primary: bool = False, load: float = 0.0) -> Candidate:
    return Candidate(name, f"http://{name}", region, capacity, revision, in_rotation,
                     primary, load)


NET = [
    site("primary", "eu", primary=True),
    site("eu2", "eu"),
    site("uk1", "uk"),
    site("us1", "us"),
    site("ca1", "ca"),
]


def ranked_names(sites: list[Candidate], *, region: str | None = "eu", needed: int = 1,
                 popularity: float = 0.0, seed: int = 1) -> list[str]:
    out = rank_sites(sites, client_region=region, needed_revision=needed,
                     popularity=popularity, rng=random.Random(seed), policy=POLICY)
    return [r.site.name for r in out]


def first_choices(sites: list[Candidate], draws: int = 2000, **kw: object) -> Counter[str]:
    counts: Counter[str] = Counter()
    for seed in range(draws):
        counts[ranked_names(sites, seed=seed, **kw)[0]] += 1  # type: ignore[arg-type]
    return counts


@pytest.mark.parametrize(("region", "expected_tiers"), [
    ("eu", {"primary": Tier.SAME_REGION, "eu2": Tier.SAME_REGION, "uk1": Tier.NEIGHBOUR,
            "us1": Tier.OTHER, "ca1": Tier.OTHER}),
    ("us", {"primary": Tier.OTHER, "eu2": Tier.OTHER, "uk1": Tier.OTHER,
            "us1": Tier.SAME_REGION, "ca1": Tier.NEIGHBOUR}),
    ("jp", {s.name: Tier.OTHER for s in NET}),
    (None, {s.name: Tier.OTHER for s in NET}),
])
def test_tiers_by_client_region(region: str | None, expected_tiers: dict[str, Tier]) -> None:
    assert {s.name: tier_of(s, region, POLICY) for s in NET} == expected_tiers


@pytest.mark.parametrize(("region", "first_tier_names"), [
    ("eu", {"primary", "eu2"}),
    ("uk", {"uk1"}),
    ("us", {"us1"}),
    ("ca", {"ca1"}),
])
def test_same_region_first_then_neighbours_then_the_rest(
    region: str, first_tier_names: set[str]
) -> None:
    for seed in range(20):
        names = ranked_names(NET, region=region, seed=seed)
        assert set(names[: len(first_tier_names)]) == first_tier_names
        assert sorted(names) == sorted(s.name for s in NET)
    names = ranked_names(NET, region="eu")
    assert names[2] == "uk1"  # the neighbour comes right after the region


def test_sites_out_of_rotation_or_unchecked_are_never_chosen() -> None:
    sites = [site("primary", "eu", primary=True), site("down", "eu", in_rotation=False),
             site("unknown", "eu", revision=None), site("us1", "us")]
    for seed in range(50):
        assert ranked_names(sites, seed=seed) == ["primary", "us1"]


@pytest.mark.parametrize(("needed", "expected"), [
    (1, {"primary", "old", "new"}),
    (5, {"primary", "old", "new"}),
    (6, {"primary", "new"}),
    (10, {"primary", "new"}),
])
def test_only_sites_holding_the_files_version(needed: int, expected: set[str]) -> None:
    sites = [site("primary", "eu", primary=True, revision=10), site("old", "eu", revision=5),
             site("new", "eu", revision=12)]
    assert set(ranked_names(sites, needed=needed)) == expected


@pytest.mark.parametrize("primary_state", [
    {"in_rotation": True, "revision": 3},  # primary itself too old for the file
    {"in_rotation": False, "revision": 10},  # primary out of rotation
])
def test_fallback_to_the_primary_when_no_site_qualifies(primary_state: dict[str, object]) -> None:
    sites = [site("primary", "eu", primary=True, **primary_state),  # type: ignore[arg-type]
             site("m1", "us", in_rotation=False), site("m2", "eu", revision=2)]
    out = rank_sites(sites, client_region="us", needed_revision=5, popularity=0,
                     rng=random.Random(0), policy=POLICY)
    assert [(r.site.name, r.tier) for r in out] == [("primary", Tier.FALLBACK)]


def test_no_primary_and_no_eligible_site_gives_nothing() -> None:
    sites = [site("m1", "us", in_rotation=False)]
    assert ranked_names(sites) == []


def test_zero_capacity_sites_are_not_chosen() -> None:
    sites = [site("primary", "eu", primary=True), site("drained", "eu", capacity=0)]
    assert ranked_names(sites) == ["primary"]


def test_weighted_by_capacity() -> None:
    sites = [site("big", "eu", capacity=300), site("small", "eu", capacity=100),
             site("primary", "us", primary=True)]
    counts = first_choices(sites)
    assert counts["primary"] == 0
    share = counts["big"] / (counts["big"] + counts["small"])
    assert 0.70 < share < 0.80  # 3 : 1 -> 75%


def test_weighted_by_inverse_load() -> None:
    sites = [site("busy", "eu", load=3.0), site("idle", "eu", load=0.0)]
    counts = first_choices(sites)
    share = counts["idle"] / sum(counts.values())
    assert 0.75 < share < 0.85  # weights 100/4 : 100/1 -> 80%


def test_deterministic_with_a_seeded_random_source() -> None:
    assert ranked_names(NET, seed=7) == ranked_names(NET, seed=7)
    orders = {tuple(ranked_names(NET, seed=s)) for s in range(30)}
    assert len(orders) > 1  # and not the same order for every seed


@pytest.mark.parametrize(("popularity", "extra"), [
    (0, 0), (59.9, 0), (60, 1), (119, 1), (120, 2), (240, 3), (60 * 1024, 11),
])
def test_spread_grows_with_popularity(popularity: float, extra: int) -> None:
    assert spread(popularity, POLICY) == extra


def test_spread_disabled_with_a_zero_threshold() -> None:
    assert spread(1e9, SelectionPolicy(popular_per_minute=0)) == 0


def test_popular_files_spread_beyond_the_region() -> None:
    sites = [site("eu1", "eu"), site("uk1", "uk"), site("us1", "us"), site("ca1", "ca")]
    cold = first_choices(sites, draws=400, popularity=0)
    assert set(cold) == {"eu1"}
    warm = first_choices(sites, draws=400, popularity=60)  # best tier + 1: eu1, uk1
    assert set(warm) == {"eu1", "uk1"}
    hot = first_choices(sites, draws=800, popularity=240)  # + 3: every site
    assert set(hot) == {"eu1", "uk1", "us1", "ca1"}
    assert all(count > 100 for count in hot.values())


def test_a_popular_file_keeps_every_site_in_the_list() -> None:
    names = ranked_names(NET, popularity=10_000)
    assert sorted(names) == sorted(s.name for s in NET)
