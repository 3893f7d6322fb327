"""The follower: the thread inside ``tain serve`` that keeps a mirror in step.

It syncs every repository it carries, then long-polls the upstream's event endpoint
and syncs what changed as soon as it is told (polling every ``poll`` seconds anyway).
An upstream that fails is left for the next one in ``[mirror] upstreams``. Each sync
writes a trace, in the catalog and as ``published/.tain-trace/<repo>``. With several
processes on one catalog, only the holder of the "follower" lease follows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx

from tain.catalog.mirrorstate import Trace
from tain.config_mirror import MirrorConfig
from tain.core.signing import fingerprint
from tain.core.statements import Rotation, chain_passes, follow_chain
from tain.errors import IntegrityError, TainError
from tain.mirror.deleted import handle_deleted
from tain.mirror.sync import SyncResult, sync_repo
from tain.mirror.trace import write_trace_file
from tain.mirror.upstream import UpstreamClient
from tain.service.lease import LeaseKeeper
from tain.service.site import Site

log = logging.getLogger("tain.mirror")
RETRY = 2.0


class Follower:
    def __init__(self, site: Site, config: MirrorConfig, lease: LeaseKeeper, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.site, self.config, self.lease, self.clock = site, config, lease, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tain-follower", daemon=True)
        self._seq: dict[str, int] = {}
        self._client: UpstreamClient | None = None
        self._client_lock = threading.Lock()  # stop() sees every client made before it

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread, interrupting a request in flight; safe before ``start``."""
        with self._client_lock:
            self._stop.set()
            client = self._client
        if client is not None:
            client.close()  # ends a long-poll in flight
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=15)

    def _following(self) -> bool:
        return self._active() and self.lease.held

    def _active(self) -> bool:
        return not self._stop.is_set() and self.site.mirror_of is not None

    def _run(self) -> None:
        while self._active():
            if not self.lease.wait_held(RETRY):
                continue  # another process follows
            for upstream in self.config.upstreams:
                if not self._following():
                    break  # stopped, or the lease went to another process
                try:
                    self._follow(upstream)
                except TainError as exc:
                    if self._following():
                        log.warning("following %s: %s", upstream, exc)
                except RuntimeError:  # the client was closed by stop()
                    return
            self._stop.wait(RETRY)

    def _follow(self, upstream: str) -> None:
        """Sync all, then wait for events, until the upstream fails or we stop."""
        timeout = httpx.Timeout(self.config.long_poll_seconds + 30, connect=10)
        client = UpstreamClient(upstream, self.config.token, timeout=timeout)
        with self._client_lock:
            if self._stop.is_set():  # stop() came first: it would not close this client
                client.close()
                return
            self._client = client
        try:
            self.site.mirror_of = upstream
            repos = self._repos(client)
            self.sync(client, repos)
            polled_at = self.clock()
            while self._following():
                wait = min(self.config.long_poll_seconds, max(1, self.config.poll_seconds))
                answer = client.events(self._seq.get(upstream, 0), wait)
                self._seq[upstream] = int(answer.get("seq", 0))
                changed = [r for r in answer.get("repos", []) if r in repos]
                if self.clock() - polled_at >= self.config.poll_seconds:
                    repos = changed = self._repos(client)
                    polled_at = self.clock()
                if changed:
                    self.sync(client, changed)
        finally:
            with self._client_lock:
                self._client = None
            client.close()

    def _repos(self, client: UpstreamClient) -> list[str]:
        if self.config.repos is not None:
            return list(self.config.repos)
        names = [str(r["name"]) for r in client.list_repos()]
        handle_deleted(self.site, client.base_url, set(names),
                       prune=self.config.prune_deleted, now=self.clock())
        return names

    def sync(self, client: UpstreamClient, repos: list[str]) -> None:
        started = self.clock()
        try:
            keys = self._trusted_keys(client)
        except TainError as exc:  # every repository's trace says why nothing moves
            old = {t.repo: t for t in self.site.catalog.list_traces()}
            for repo in repos:
                self._trace(repo, client.base_url, old.get(repo), started, None, str(exc))
            raise
        for repo in repos:
            if not self._following():
                return
            self._sync_one(client, repo, keys)

    def _trusted_keys(self, client: UpstreamClient) -> list[Rotation]:
        """The upstream's key chain, verified: it must pass through the pinned key
        (``[mirror] key``) and extend the chain held here."""
        chain = client.key_chain()
        if not chain:
            raise IntegrityError(f"{client.base_url} publishes no signing key")
        held = self.site.catalog.key_chain()
        pin = self.config.key
        if pin is not None and not chain_passes(chain, pin):
            raise IntegrityError(
                f"{client.base_url}'s key chain does not contain the pinned key {pin} "
                "([mirror] key)", hint="the upstream may be an impostor, or the pin is wrong")
        follow_chain((held or chain)[0].new, chain)  # every link signed by the one before
        if held and [k.new for k in chain[: len(held)]] != [k.new for k in held]:
            raise IntegrityError(f"{client.base_url}'s key chain does not extend ours")
        if pin is None and not held:
            log.warning("trusting the key chain of %s on first use (root key %s); pin it "
                        "with [mirror] key = FINGERPRINT", client.base_url,
                        fingerprint(chain[0].new))
        self.site.catalog.set_key_chain(chain, actor="mirror")
        return chain

    def _sync_one(self, client: UpstreamClient, repo: str, keys: list[Rotation]) -> None:
        started = self.clock()
        old = {t.repo: t for t in self.site.catalog.list_traces()}.get(repo)
        try:
            result = sync_repo(self.site, client, repo, keys, parallel=self.config.parallel)
        except TainError as exc:
            log.warning("%s: sync from %s failed: %s", repo, client.base_url, exc)
            self._trace(repo, client.base_url, old, started, None, str(exc))
            return
        self._trace(repo, client.base_url, old, started, result, None)

    def _trace(self, repo: str, upstream: str, old: Trace | None, started: float,
               result: SyncResult | None, error: str | None) -> None:
        now = self.clock()
        ok = result is not None
        trace = Trace(
            repo=repo, upstream=upstream,
            revision=result.revision if result else (old.revision if old else 0),
            upstream_head=result.upstream_head if result else (old.upstream_head if old else 0),
            last_attempt_at=now,
            last_success_at=now if ok else (old.last_success_at if old else None),
            last_bytes=result.bytes if result else (old.last_bytes if old else 0),
            last_duration=now - started if ok else (old.last_duration if old else 0.0),
            last_error=error,
        )
        try:
            self.site.catalog.record_trace(trace)
            write_trace_file(self.site.config.published_dir, trace)
        except (TainError, OSError) as exc:
            log.warning("%s: cannot write the trace: %s", repo, exc)
