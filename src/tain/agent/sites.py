"""The agent's link to its sites: which one to use, a client for each, and whether the
journal describes the one in use (a catch-up is due after every switch, failure or
conflict, and when somebody else may have moved the repository)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import httpx

from tain.agent.config import SourceConfig, Timing
from tain.agent.failover import SiteSelector
from tain.agent.journal import Journal
from tain.agent.reconcile import catch_up
from tain.client import SiteClient
from tain.errors import ReadOnlyMirror, TainError

log = logging.getLogger("tain.agent")
CONFLICTS_BEFORE_HOLD = 3
MIN_BACKOFF = 0.1


class SiteLink:
    def __init__(
        self,
        config: SourceConfig,
        timing: Timing,
        journal: Journal,
        *,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.timing = timing
        self.journal = journal
        self.stop = stop
        self.clock = clock
        self.label = config.label
        base = max(MIN_BACKOFF, timing.backoff)  # a failed site is never retried in a spin
        self.selector = SiteSelector(
            config.sites, clock=clock, rng=rng or random.Random(), base=base,
            cap=max(base, timing.max_backoff), failback=timing.failback,
        )
        self.head: int | None = None  # the head of the site in use, as last seen
        self._clients: dict[tuple[str, str], SiteClient] = {}
        self._lock = threading.Lock()
        self._caught_up_with: str | None = None
        self._verify_at = clock() + timing.verify
        self._conflicts = 0

    def client(self, site: str, purpose: str = "sync") -> SiteClient:
        """A client per site and purpose (sync retries; probes and heartbeats do not)."""
        with self._lock:
            client = self._clients.get((site, purpose))
            if client is None:
                timeout = httpx.Timeout(self.timing.timeout, connect=self.timing.connect_timeout)
                client = SiteClient(site, self.config.token_for(site), timeout=timeout,
                                    retries=2 if purpose == "sync" else 0)
                self._clients[(site, purpose)] = client
            return client

    def ready(self, site: str) -> SiteClient:
        """The client of ``site`` once the journal describes its head (catching up)."""
        client = self.client(site)
        if self._caught_up_with != site:
            record = self.journal.remote_record()
            if record is None or record[0] != site:
                log.info("%s: reading %s at %s to compare", self.label, self.config.repo, site)
            result = catch_up(client, self.config.repo, self.journal, site, stop=self.stop)
            if result.corrected:
                log.info("%s: %s revision %d differs from the journal in %d path(s) (%s)",
                         self.label, site, result.head, result.corrected, result.how)
            self._caught_up_with, self.head = site, result.head
            self.selector.succeeded(site)
        return client

    def committed(self, site: str, revision: int | None) -> None:
        self.selector.succeeded(site)
        self._conflicts = 0
        if revision is not None:
            self.head = revision

    def conflicted(self, site: str, exc: TainError) -> None:
        """The repository moved under a commit: catch up (a site that keeps refusing
        commits this way is put on hold like a failed one)."""
        self._caught_up_with = None
        self._conflicts += 1
        if self._conflicts >= CONFLICTS_BEFORE_HOLD:
            self._conflicts = 0
            self.failed(site, exc)
        else:
            log.info("%s: %s moved on meanwhile; catching up", self.label, self.config.repo)

    def failed(self, site: str, exc: TainError) -> None:
        hold = self.selector.failed(site, str(exc))
        if self._caught_up_with == site:
            self._caught_up_with = None
        following = self.selector.choose()
        where = f"trying {following}" if following else f"no site left; retrying in {hold:.1f}s"
        log.warning("%s: %s failed: %s; %s", self.label, site, exc, where)

    def failback(self) -> bool:
        """Probe a preferred site now and then; True when the agent switched back."""
        candidate = self.selector.failback_candidate()
        if candidate is None:
            return False
        self.selector.probed(candidate)
        try:
            answer = self.client(candidate, "probe").get_repo(self.config.repo)
            if answer.get("mirror_of"):  # it answers, but takes no pushes
                raise ReadOnlyMirror(f"{candidate} is a mirror of {answer['mirror_of']}")
        except TainError as exc:
            self.selector.failed(candidate, str(exc))
            return False
        log.info("%s: %s answers again; going back to it", self.label, candidate)
        self.selector.succeeded(candidate)
        return True

    def verify(self, site: str) -> None:
        """Now and then (or when a heartbeat saw another head): did anybody else move
        the repository? Then catch up before the next cycle."""
        if self.clock() < self._verify_at:
            return
        self._verify_at = self.clock() + self.timing.verify
        head = int(self.client(site).get_repo(self.config.repo)["head"])
        if self.journal.remote_record() != (site, head):
            self._caught_up_with = None

    def head_seen(self, head: int) -> None:
        """A heartbeat's answer: a head other than ours means verify soon."""
        if head != self.head:
            self._verify_at = 0.0

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
