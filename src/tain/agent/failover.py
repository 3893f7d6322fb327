"""Which site to talk to: a pure selection over the agent's ordered site list.

The agent stays with the site it uses while that works. A failure (no connection, a
timeout, a 5xx, or a site that refuses the repository) puts the site on hold for a
backoff that doubles with each consecutive failure, up to ``cap``, with jitter (half to
all of it) so that many agents do not come back in step; the next site in the list
that is not on hold takes over. When every site is on hold there is none to use until
the first hold ends. While it uses a later site, the agent probes the sites before it
(at most every ``failback`` seconds each) and returns to the first one that answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class SiteHealth:
    failures: int = 0
    retry_at: float = 0.0
    last_error: str | None = None
    probe_at: float = 0.0


class SiteSelector:
    def __init__(
        self,
        sites: Sequence[str],
        *,
        clock: Callable[[], float],
        rng: random.Random,
        base: float = 0.5,
        cap: float = 30.0,
        failback: float = 60.0,
    ) -> None:
        if not sites:
            raise ValueError("at least one site is needed")
        self.sites = tuple(sites)
        self._clock = clock
        self._rng = rng
        self._base = base
        self._cap = cap
        self._failback = failback
        self.health = {site: SiteHealth() for site in self.sites}
        self.current: str | None = None

    def backoff(self, failures: int) -> float:
        """The hold after ``failures`` consecutive failures: capped doubling, jittered."""
        full = min(self._cap, self._base * 2.0 ** max(0, failures - 1))
        return float(full * self._rng.uniform(0.5, 1.0))

    def choose(self) -> str | None:
        """The site to use now: the current one, else the first that is not on hold."""
        if self.current is not None:
            return self.current
        now = self._clock()
        for site in self.sites:
            if self.health[site].retry_at <= now:
                return site
        return None

    def wait_time(self) -> float:
        """Seconds until some site may be tried again (0 when one may be now)."""
        if self.choose() is not None:
            return 0.0
        soonest = min(h.retry_at for h in self.health.values())
        return max(0.0, soonest - self._clock())

    def succeeded(self, site: str) -> None:
        health = self.health[site]
        health.failures, health.retry_at, health.last_error = 0, 0.0, None
        self.current = site
        now = self._clock()
        for earlier in self.sites[: self.sites.index(site)]:
            self.health[earlier].probe_at = max(self.health[earlier].probe_at,
                                                now + self._failback)

    def failed(self, site: str, error: str) -> float:
        """Put ``site`` on hold; returns the hold in seconds."""
        health = self.health[site]
        health.failures += 1
        health.last_error = error
        hold = self.backoff(health.failures)
        health.retry_at = self._clock() + hold
        health.probe_at = max(health.probe_at, health.retry_at)
        if self.current == site:
            self.current = None
        return hold

    def failback_candidate(self) -> str | None:
        """A site before the current one that is due for a probe, if any."""
        if self.current is None:
            return None
        now = self._clock()
        for site in self.sites[: self.sites.index(self.current)]:
            health = self.health[site]
            if health.retry_at <= now and health.probe_at <= now:
                return site
        return None

    def probed(self, site: str) -> None:
        """A failback probe of ``site`` was made (whatever its outcome)."""
        self.health[site].probe_at = self._clock() + self._failback
