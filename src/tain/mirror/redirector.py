"""The redirector's view of the network: which sites can serve a file, for whom.

It combines the configured sites, their health as the checks recorded it (read from
the catalog, so every ``tain serve`` process of a site agrees, and cached for
``HEALTH_TTL`` seconds), the client's region (trusted proxies, CIDR map, optional
GeoIP), and two in-memory decaying counters: requests per file (popularity) and
redirects per site (load). The choice itself is ``tain.core.selection.rank_sites``.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tain.catalog.health import RepoCheck, SiteCheck
from tain.catalog.models import Repo, Version
from tain.config_sites import RedirectorConfig, SiteSpec
from tain.core.popularity import DecayingCounter
from tain.core.regions import client_address
from tain.core.selection import Candidate, Ranked, SelectionPolicy, rank_sites
from tain.mirror.geoip import GeoIP
from tain.service.reads import NotCached
from tain.service.site import Site

HEALTH_TTL = 2.0
MAX_CACHED_VERSIONS = 100_000


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    sites: dict[str, SiteCheck]
    repos: dict[tuple[str, str], RepoCheck]


class Redirector:
    def __init__(self, site: Site, config: RedirectorConfig, *,
                 clock: Callable[[], float] | None = None,
                 rng: random.Random | None = None) -> None:
        self.site = site
        self.config = config
        self.clock = clock or site.clock
        self.rng = rng or random.Random()
        self.policy = SelectionPolicy(config.neighbours, config.popular_per_minute)
        self.geoip = GeoIP(config.geoip_db, config.geoip_regions) if config.geoip_db else None
        self.popularity = DecayingCounter(half_life=300.0)
        self.load = DecayingCounter(half_life=60.0, max_keys=10_000)
        self._lock = threading.Lock()
        self._snapshot: tuple[float, HealthSnapshot] | None = None
        self._versions: OrderedDict[tuple[int, int, str], Version | None] = OrderedDict()

    def version(self, repo: Repo, path: str, *, block: bool = True) -> Version | None:
        """The head version of ``path`` with the revision where it appeared (cached:
        a version at a given head never changes). ``block=False``: ``NotCached``
        rather than a catalog read."""
        key = (repo.id, repo.head, path)
        with self._lock:
            if key in self._versions:
                self._versions.move_to_end(key)
                return self._versions[key]
        if not block:
            raise NotCached(path)
        found = self.site.catalog.version_at(repo.name, path, repo.head) if repo.head else None
        with self._lock:
            self._versions[key] = found
            if len(self._versions) > MAX_CACHED_VERSIONS:
                self._versions.popitem(last=False)
        return found

    def health(self, *, block: bool = True) -> HealthSnapshot:
        now = self.clock()
        cached = self._snapshot
        if cached is not None and 0 <= now - cached[0] < HEALTH_TTL:
            return cached[1]
        if not block:
            raise NotCached("site health")
        sites, repos = self.site.catalog.site_health()
        snap = HealthSnapshot({s.site: s for s in sites}, {(r.site, r.repo): r for r in repos})
        self._snapshot = (now, snap)
        return snap

    def client_region(self, peer: str, forwarded_for: Sequence[str]) -> str | None:
        address = client_address(peer, forwarded_for, self.config.trusted_proxies)
        region = self.config.regions.region_of(address)
        if region is None and self.geoip is not None:
            region = self.geoip.region_of(address)
        return region

    def candidates(self, repo: str, *, block: bool = True) -> list[Candidate]:
        snap = self.health(block=block)
        now = self.clock()
        out = []
        for spec in self.config.all_sites:
            row = snap.repos.get((spec.name, repo))
            out.append(Candidate(
                name=spec.name, url=spec.url, region=spec.region, capacity=spec.capacity,
                revision=row.revision if row else None,
                in_rotation=bool(row and row.in_rotation), primary=spec.primary,
                load=self.site_load(spec, now),
            ))
        return out

    def site_load(self, spec: SiteSpec, now: float) -> float:
        """Redirects per second recently sent to the site, per unit of capacity."""
        if spec.capacity <= 0:
            return 0.0
        with self._lock:
            rate = self.load.per_minute(spec.name, now)
        return rate / 60.0 / spec.capacity

    def rank(self, repo: str, path: str, needed_revision: int, client_region: str | None,
             *, count: bool = True, block: bool = True) -> list[Ranked]:
        """Sites for one file, best first; ``count`` records the request's popularity."""
        sites = self.candidates(repo, block=block)  # first: NotCached must not count
        now = self.clock()
        with self._lock:
            hits = self.popularity.hit((repo, path), now) if count else (
                self.popularity.per_minute((repo, path), now))
        with self._lock:  # rank_sites draws from the shared random source
            return rank_sites(sites, client_region=client_region,
                              needed_revision=needed_revision, popularity=hits,
                              rng=self.rng, policy=self.policy)

    def sent(self, site_name: str) -> None:
        """Count one redirect to ``site_name`` (its load)."""
        with self._lock:
            self.load.hit(site_name, self.clock())

    def close(self) -> None:
        if self.geoip is not None:
            self.geoip.close()
