"""What the primary says, read once per round of checks and shared by the checks of
every site: the heads of the repositories, when revisions were committed, and the
tree page from which files are sampled (the same page for every site at one revision).
"""

from __future__ import annotations

import threading

from tain.core.manifest import Entry, Kind
from tain.errors import TainError
from tain.mirror.probe import SiteProbe


class PrimaryView:
    def __init__(self, probe: SiteProbe, repos: list[str], cursors: dict[str, str]) -> None:
        self._probe = probe
        self._cursors = cursors
        self._lock = threading.Lock()
        self._times: dict[tuple[str, int], float | None] = {}
        self._pages: dict[tuple[str, int], tuple[list[Entry], str | None] | None] = {}
        self.repos = repos
        self.heads: dict[str, int] = {}
        self.error: str | None = None
        try:
            for repo in repos:
                self.heads[repo] = probe.head(repo)
        except TainError as exc:
            self.error = f"the primary cannot be read: {exc}"

    def committed_at(self, repo: str, number: int) -> float | None:
        key = (repo, number)
        with self._lock:
            if key in self._times:
                return self._times[key]
        try:
            found: float | None = self._probe.committed_at(repo, number)
        except TainError:
            found = None
        with self._lock:
            self._times[key] = found
        return found

    def files(self, repo: str, rev: int, max_bytes: int) -> list[Entry]:
        """Files of at most ``max_bytes`` in this round's page of ``repo`` at ``rev``."""
        if rev < 1:
            return []
        key = (repo, rev)
        with self._lock:
            known = key in self._pages
            cached = self._pages.get(key)
        if not known:
            try:
                cached = self._probe.tree_page(repo, rev, self._cursors.get(repo, ""))
            except TainError:
                cached = None  # e.g. a revision the primary no longer keeps
            with self._lock:
                self._pages[key] = cached
        if cached is None:
            return []
        return [e for e in cached[0] if e.kind is Kind.FILE and e.size <= max_bytes]

    def next_cursors(self) -> dict[str, str]:
        """Where the next round's pages start: after this round's page at the head."""
        out = dict(self._cursors)
        for repo, head in self.heads.items():
            page = self._pages.get((repo, head))
            if page is not None:
                out[repo] = page[1] or ""
        return out
