"""Revision notifications: every commit (or replicated revision) bumps a sequence
number; followers long-poll for a sequence past the one they saw."""

from __future__ import annotations

import threading


class RevisionEvents:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._changed: dict[str, int] = {}  # repo -> seq of its last change

    def notify(self, repo: str) -> None:
        with self._cond:
            self._seq += 1
            self._changed[repo] = self._seq
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> tuple[int, list[str]]:
        """Block until something changed after ``since`` (or ``timeout``); returns the
        current sequence and the repositories changed after ``since``. A ``since``
        ahead of the sequence (the site restarted) answers at once with every repo
        this process has seen change."""
        with self._cond:
            if since <= self._seq:
                self._cond.wait_for(lambda: self._seq > since, timeout=timeout)
            else:
                since = 0
            return self._seq, sorted(r for r, s in self._changed.items() if s > since)

    @property
    def seq(self) -> int:
        with self._cond:
            return self._seq
