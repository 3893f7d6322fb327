"""A running site: its config, catalog, store, signing key and publisher, as one value."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tain.catalog.base import Catalog
from tain.catalog.models import CommitResult
from tain.catalog.sql import open_catalog
from tain.config import SiteConfig
from tain.core.signing import load_private_key, public_key_text, sign_revision
from tain.errors import ReadOnlyMirror, StorageError, UsageError
from tain.service.events import RevisionEvents
from tain.service.hooks import ChangeHooks
from tain.service.publish import Publisher
from tain.service.reads import ReadCache
from tain.service.usage import Usage
from tain.store.base import BlobStore
from tain.store.factory import open_store
from tain.store.local import LocalStore

log = logging.getLogger("tain.site")


@dataclass
class Site:
    config: SiteConfig
    catalog: Catalog
    store: BlobStore
    key: Ed25519PrivateKey
    publisher: Publisher
    clock: Callable[[], float] = time.time
    reads: ReadCache = field(init=False)
    usage: Usage = field(init=False)  # downloads and pushes counted in memory
    # replication: the upstream this site follows (None on a primary), revision events
    # for followers' long-polls, and hooks run after every change to a repository
    mirror_of: str | None = None
    events: RevisionEvents = field(default_factory=RevisionEvents)
    on_change: ChangeHooks = field(default_factory=ChangeHooks)

    def __post_init__(self) -> None:
        self.reads = ReadCache(self.catalog, self.clock)
        stats = self.config.monitoring.stats
        self.usage = Usage(stats.site_name, popular_cap=stats.popular_paths, clock=self.clock)
        if self.config.mirror is not None:
            self.mirror_of = self.config.mirror.upstreams[0]

    def check_writable(self) -> None:
        """A mirror takes no pushes, puts, deletes or rollbacks: they go to the primary."""
        if self.mirror_of is not None:
            raise ReadOnlyMirror(
                f"this site is a read-only mirror of {self.mirror_of}",
                hint=f"push to the primary ({self.mirror_of})", primary=self.mirror_of)

    @property
    def public_key(self) -> str:
        return public_key_text(self.key)

    def sign(self, repo: str, number: int, change_digest: str) -> str:
        return sign_revision(self.key, repo, number, change_digest)

    def publish(self, repo: str, commit: CommitResult | None = None) -> None:
        """Publish the head (``commit``: the commit that just made it, if one did); a
        failure is logged and repaired by the next publish. Nothing happens when the
        config says ``[server] publish = false``. Every change to a repository ends
        here, so cached reads of it are dropped."""
        self.reads.forget(repo)
        if self.config.publish:
            try:
                self.publisher.publish(repo, commit)
            except StorageError as exc:
                log.error("publishing %s failed: %s", repo, exc)
        self.events.notify(repo)
        self.on_change.run(repo)

    def close(self) -> None:
        self.catalog.close()
        close_store = getattr(self.store, "close", None)  # a store with connections
        if callable(close_store):
            close_store()


def open_site(config: SiteConfig, *, clock: Callable[[], float] = time.time) -> Site:
    try:
        key = load_private_key(config.key_file.read_bytes())
    except FileNotFoundError as exc:
        raise UsageError(f"signing key {config.key_file} is missing",
                         hint="was this site created with 'tain init'?") from exc
    store = open_store(config.store)  # before the catalog: it can refuse its config
    catalog = open_catalog(config.database_url, clock=clock)
    publisher = Publisher(config.published_dir, catalog, store)
    return Site(config, catalog, store, key, publisher, clock)


def recover(site: Site) -> None:
    """Startup repair: drop stale temp files of a local store and bring every published
    tree to head (unless publishing is off)."""
    removed = site.store.clean_tmp(site.clock() - 60) if isinstance(site.store, LocalStore) else 0
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted write", removed)
    if not site.config.publish:
        return
    for repo in site.catalog.list_repos():
        site.publish(repo.name)
