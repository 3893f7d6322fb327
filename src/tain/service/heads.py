"""Head statements and the key chain on the site that signs (the primary).

After every change the repository is marked dirty; one background thread computes the
manifest digest of its head and signs a fresh head statement, off the commit path and
coalesced (a burst of commits costs one digest a second or so, ``SIGN_GAP``). The
digest follows the last signed state by the diff since (``ManifestCache``), so it costs
the changes and a sort, not a walk of the whole tree.
The same thread re-signs a statement when a third of its validity is left. Mirrors
sign nothing: they copy statements and the key chain from their upstream.

With several processes on one catalog only the holder of the signer's lease signs; it
learns of commits made by the other processes from ``unsigned_heads`` (one query every
``POLL_SECONDS``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tain.catalog.base import Catalog
from tain.catalog.models import Repo
from tain.core.signing import (
    load_private_key,
    new_private_key_pem,
    private_key_pem,
    public_key_text,
)
from tain.core.statements import (
    HeadStatement,
    ManifestLines,
    Rotation,
    head_from_json,
    manifest_digest,
    sign_head,
    sign_rotation,
)
from tain.errors import Conflict, NotFound, TainError
from tain.service.lease import LeaseKeeper
from tain.service.site import Site

log = logging.getLogger("tain.heads")
RECHECK_SECONDS = 60.0
POLL_SECONDS = 2.0
KEEP_ENTRIES = 200_000
"""Manifest lines the signer keeps in memory, over all repositories (about 65 MB)."""
SIGN_GAP = 1.0
GAP_FACTOR = 3.0
"""After signing, wait at least ``SIGN_GAP`` s and ``GAP_FACTOR`` times the round's
duration: a manifest walk is O(tree), so during a burst of commits to a large
repository the walks take at most a quarter of one core from the commits."""


def ensure_key_chain(site: Site) -> None:
    """A primary whose chain is empty starts it with its key as the root."""
    if site.mirror_of is None:
        site.catalog.start_key_chain(site.public_key, site.clock())


def sign_head_now(
    site: Site, repo: str, manifests: ManifestCache | None = None
) -> HeadStatement | None:
    """Compute and store the head statement of ``repo`` (None when it is empty)."""
    row = site.catalog.get_repo(repo)
    rev = row.head
    if rev == 0:
        return None
    revision = site.catalog.get_revision(repo, rev)
    digest = manifests.digest(row, rev) if manifests is not None else \
        manifest_digest(site.catalog.iter_tree(repo, rev))
    head = sign_head(site.key, HeadStatement(
        repo, rev, revision.change_digest, digest,
        site.clock() + site.config.signing.expires_seconds, ""), site.public_key)
    site.catalog.put_head(repo, rev, head.to_json())
    return head


def rotate_key(site: Site, *, actor: str) -> Rotation:
    """A new site key, handed over to by the old one; the old key file is kept beside
    as ``signing.key.<seq>.retired``. Every head is signed again with the new key."""
    site.check_writable()
    ensure_key_chain(site)
    chain = site.catalog.key_chain()
    if chain[-1].new != site.public_key:
        raise Conflict("the key file is not the last key of the site's key chain",
                       hint="restore the current key file before rotating")
    old_key, new_key = site.key, load_private_key(new_private_key_pem())
    key_file: Path = site.config.key_file
    retired = key_file.with_name(f"{key_file.name}.{chain[-1].seq}.retired")
    os.replace(key_file, retired)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(new_key))
        fh.flush()
        os.fsync(fh.fileno())

    def hand_over(starts: dict[str, int]) -> Rotation:
        link = sign_rotation(old_key, Rotation(chain[-1].seq + 1, public_key_text(old_key),
                                               public_key_text(new_key), site.clock(),
                                               starts=starts))
        site.key = new_key  # commits wait for the repository rows this holds
        return link

    try:
        link = site.catalog.rotate_at_heads(hand_over, actor=actor)
    except BaseException:
        site.key = old_key
        raise
    for repo in site.catalog.list_repos():
        sign_head_now(site, repo.name)
    return link


@dataclass
class _Kept:
    identity: tuple[int, float]  # Repo.identity
    revision: int
    lines: ManifestLines


class ManifestCache:
    """The manifest lines of the heads signed last, so that the next head of a
    repository is digested from those and the diff since (its changes and a sort)
    instead of a walk of the whole tree: during a burst the signer stays cheap, and a
    large repository does not cost a walk per signature. At most ``KEEP_ENTRIES``
    lines are kept across repositories; a larger repository is walked each time."""

    def __init__(self, catalog: Catalog, limit: int = KEEP_ENTRIES) -> None:
        self.catalog, self.limit = catalog, limit
        self._kept: dict[str, _Kept] = {}

    def digest(self, repo: Repo, rev: int) -> str:
        lines = self._followed(self._kept.pop(repo.name, None), repo, rev)
        if lines is None:
            lines = ManifestLines(self.catalog.iter_tree(repo.name, rev))
        digest = lines.digest()
        self._keep(repo.name, _Kept(repo.identity, rev, lines))
        return digest

    def _followed(self, kept: _Kept | None, repo: Repo, rev: int) -> ManifestLines | None:
        if kept is None or kept.identity != repo.identity or kept.revision > rev:
            return None
        try:  # exact: a directory's new mtime changes its manifest line too
            changes = self.catalog.diff(repo.name, kept.revision, rev, exact=True)
        except NotFound:  # the kept revision is gone (retention): walk instead
            return None
        kept.lines.apply((c.path, c.new) for c in changes)
        return kept.lines

    def _keep(self, repo: str, kept: _Kept) -> None:
        if len(kept.lines) > self.limit:
            return
        self._kept[repo] = kept  # the most recent last
        while sum(len(k.lines) for k in self._kept.values()) > self.limit:
            del self._kept[next(iter(self._kept))]


class HeadSigner:
    """The background thread that keeps every head statement fresh."""

    def __init__(self, site: Site, lease: LeaseKeeper) -> None:
        self.site, self.lease = site, lease
        self._checked_at = 0.0
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tain-heads", daemon=True)
        self.manifests = ManifestCache(site.catalog)

    def start(self) -> None:
        ensure_key_chain(self.site)
        self.site.on_change.add(self.mark)
        with self._lock:
            self._dirty.update(r.name for r in self.site.catalog.list_repos())
        self._thread.start()
        self._wake.set()

    def mark(self, repo: str) -> None:
        with self._lock:
            self._dirty.add(repo)
        self._wake.set()

    def stop(self) -> None:
        """End the thread and drop the hook; safe before (or without) ``start``."""
        self.site.on_change.remove(self.mark)
        self._stop.set()
        self._wake.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            started = time.monotonic()
            try:
                signed = self.run_once()
            except Exception:  # the catalog is down: the next round tries again
                log.exception("cannot check the head statements")
                continue
            if signed:  # a burst of commits: walk manifests at most so often
                self._stop.wait(max(SIGN_GAP, GAP_FACTOR * (time.monotonic() - started)))

    def run_once(self) -> list[str]:
        """One round; the repositories it signed (none on a mirror, or while another
        process holds the lease)."""
        if self.site.mirror_of is not None or not self.lease.held:
            self._checked_at = 0.0  # a new holder checks every head at once
            return []
        due = sorted(self._due())
        self._sign(due)
        return due

    def _due(self) -> set[str]:
        with self._lock:
            due, self._dirty = self._dirty, set()
        due.update(self.site.catalog.unsigned_heads())
        if self.site.clock() - self._checked_at >= RECHECK_SECONDS:
            self._checked_at = self.site.clock()
            due |= self._expiring()
        return due

    def _sign(self, due: list[str]) -> None:
        for repo in due:
            try:
                sign_head_now(self.site, repo, self.manifests)
            except TainError as exc:
                log.warning("cannot sign the head of %s: %s", repo, exc)

    def _expiring(self) -> set[str]:
        out: set[str] = set()
        left = self.site.config.signing.expires_seconds / 3
        for repo in self.site.catalog.list_repos():
            try:
                raw = self.site.catalog.get_head(repo.name)
                stale = raw is None or head_from_json(raw).expires - self.site.clock() < left \
                    or head_from_json(raw).revision != repo.head
            except TainError:
                stale = True
            if stale:
                out.add(repo.name)
        return out
