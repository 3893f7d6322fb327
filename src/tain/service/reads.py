"""Cached reads for the download path.

A download needs the repository (its head, whether it is public) and the entry of
one path at one revision. Entries of a revision never change, so their lookups are
cached without expiry; repository rows are cached for ``ttl`` seconds (another server
process's commit becomes visible within that time) and dropped at once when this
process changes the repository.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from tain.catalog.base import Catalog
from tain.catalog.models import Repo
from tain.core.manifest import Entry

_MISSING = object()


class NotCached(Exception):
    """A lookup asked not to block (``block=False``) found nothing fresh in memory: an
    async caller then retries in a worker thread."""


class ReadCache:
    def __init__(
        self, catalog: Catalog, clock: Callable[[], float], *, ttl: float = 1.0,
        max_entries: int = 200_000,
    ) -> None:
        self._catalog = catalog
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._repos: dict[str, tuple[Repo, float]] = {}
        self._entries: OrderedDict[tuple[int, int, str], Entry | None] = OrderedDict()

    def repo(self, name: str, *, block: bool = True) -> Repo:
        """The repository row; with ``block=False``, only a fresh cached one (else
        ``NotCached``), so the event loop never waits on the catalog."""
        now = self._clock()
        with self._lock:
            cached = self._repos.get(name)
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        if not block:
            raise NotCached(name)
        repo = self._catalog.get_repo(name)  # NotFound is never cached
        with self._lock:
            self._repos[name] = (repo, now)
        return repo

    def lookup(self, repo: Repo, path: str, rev: int | None) -> Entry | None:
        """The entry at ``rev`` (None: the head ``repo`` shows)."""
        number = repo.head if rev is None else rev
        if number == 0 and rev is None:
            return None  # an empty repository holds nothing
        if number < repo.oldest_kept or number > repo.head or number < 1:
            return self._catalog.lookup(repo.name, path, number)  # raises NotFound
        key = (repo.id, number, path)
        with self._lock:
            found = self._entries.get(key, _MISSING)
            if found is not _MISSING:
                self._entries.move_to_end(key)
                return found  # type: ignore[return-value]
        entry = self._catalog.lookup(repo.name, path, number)
        with self._lock:
            self._entries[key] = entry
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return entry

    def forget(self, name: str) -> None:
        """Drop the cached repository row (after a commit, a settings change...)."""
        with self._lock:
            self._repos.pop(name, None)
