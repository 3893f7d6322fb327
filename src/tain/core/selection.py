"""Which site should serve a download: values in, ranked sites out.

``rank_sites`` orders the sites that can serve one file for one client:

1. Only sites in rotation (healthy and fresh, as the health checks decided) whose
   revision is at least the one where the file last changed are eligible; when none
   is, the primary is the fallback (even if it is out of rotation: it is the last
   place the bytes can come from).
2. Eligible sites fall into tiers: the client's region, a neighbouring region, any
   other. Within a tier the order is a weighted random draw without replacement
   (Efraimidis-Spirakis keys ``u ** (1 / w)``), the weight being the configured
   capacity divided by ``1 + load``, so a busier site gets fewer clients.
3. Popular files spread across more sites: the first ``k`` places, where ``k`` is
   the size of the best tier plus ``spread(popularity)``, are drawn among themselves
   regardless of tier, so a hot file also goes to neighbours and then further away.

The random source is passed in, so tests are deterministic with a seeded one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum


class Tier(IntEnum):
    SAME_REGION = 0
    NEIGHBOUR = 1
    OTHER = 2
    FALLBACK = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A site as the redirector sees it for one repository."""

    name: str
    url: str
    region: str
    capacity: float
    revision: int | None  # None: unknown (never checked, or the repository is missing)
    in_rotation: bool
    primary: bool = False
    load: float = 0.0  # utilisation estimate: recent requests sent / capacity

    @property
    def weight(self) -> float:
        return max(self.capacity, 0.0) / (1.0 + max(self.load, 0.0))


@dataclass(frozen=True, slots=True)
class SelectionPolicy:
    """``neighbours`` maps a region to the regions near it; a file requested at
    ``popular_per_minute`` or more spreads one site beyond the best tier, and one
    more for every doubling of its rate."""

    neighbours: Mapping[str, Sequence[str]] = field(default_factory=dict)
    popular_per_minute: float = 60.0


@dataclass(frozen=True, slots=True)
class Ranked:
    site: Candidate
    tier: Tier


def spread(popularity: float, policy: SelectionPolicy) -> int:
    """How many sites beyond the best tier share a file requested ``popularity`` times
    per minute: 0 below the threshold, then 1 + log2(popularity / threshold)."""
    threshold = policy.popular_per_minute
    if threshold <= 0 or popularity < threshold:
        return 0
    return 1 + int(math.log2(popularity / threshold))


def tier_of(site: Candidate, client_region: str | None, policy: SelectionPolicy) -> Tier:
    if not client_region:
        return Tier.OTHER
    if site.region == client_region:
        return Tier.SAME_REGION
    if site.region in policy.neighbours.get(client_region, ()):
        return Tier.NEIGHBOUR
    return Tier.OTHER


def eligible(site: Candidate, needed_revision: int) -> bool:
    return (site.in_rotation and site.revision is not None
            and site.revision >= needed_revision and site.weight > 0)


def rank_sites(
    sites: Sequence[Candidate],
    *,
    client_region: str | None,
    needed_revision: int,
    popularity: float,
    rng: random.Random,
    policy: SelectionPolicy,
) -> list[Ranked]:
    """Sites that can serve the file, best first (see the module docstring)."""
    usable = [s for s in sites if eligible(s, needed_revision)]
    if not usable:
        return [Ranked(s, Tier.FALLBACK) for s in sites if s.primary]
    keyed = [(tier_of(s, client_region, policy), _draw_key(s.weight, rng), s) for s in usable]
    keyed.sort(key=lambda item: (item[0], -item[1], item[2].name))
    best = keyed[0][0]
    k = sum(1 for tier, _, _ in keyed if tier == best) + spread(popularity, policy)
    head = sorted(keyed[:k], key=lambda item: (-item[1], item[2].name))
    return [Ranked(s, tier) for tier, _, s in head + keyed[k:]]


def _draw_key(weight: float, rng: random.Random) -> float:
    """Efraimidis-Spirakis: sorting by ``u ** (1/w)`` descending draws without
    replacement with probability proportional to ``w``."""
    u = rng.random() or 1e-12
    return float(u ** (1.0 / weight))
