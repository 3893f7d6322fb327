"""The hooks a site runs after every change to a repository (``Site.on_change``).

Parts that run in background threads register a hook when they start and remove it
when they stop, while request threads run the hooks after every commit. So the list is
guarded by a lock and each run goes over a snapshot: a hook added or removed meanwhile
neither disturbs nor skips the others. A hook that fails is logged; the change it was
told about is already made.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("tain.site")

Hook = Callable[[str], None]


class ChangeHooks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: tuple[Hook, ...] = ()

    def add(self, hook: Hook) -> None:
        with self._lock:
            self._hooks = (*self._hooks, hook)

    def remove(self, hook: Hook) -> None:
        """Take ``hook`` out (once, if it was added; nothing if it was not)."""
        with self._lock:
            hooks = list(self._hooks)
            if hook in hooks:
                hooks.remove(hook)
            self._hooks = tuple(hooks)

    def __len__(self) -> int:
        return len(self._hooks)

    def run(self, repo: str) -> None:
        """Tell every hook that ``repo`` changed."""
        for hook in self._hooks:  # a snapshot: the tuple is replaced, never changed
            try:
                hook(repo)
            except Exception:
                log.exception("a change hook failed for %s", repo)
