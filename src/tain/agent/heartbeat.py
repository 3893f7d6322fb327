"""What an agent says about itself: its status (``tain agent status`` reads it from the
journal) and the heartbeat that tells the site (``tain agents``)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import tain

log = logging.getLogger("tain.agent")
TICK = 0.5


@dataclass
class Status:
    """Set by an agent's threads; published to the journal and in heartbeats."""

    state: str = "starting"
    current_site: str | None = None
    queue_length: int = 0
    last_revision: int | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    mode: str = "inotify"
    warnings: list[str] = field(default_factory=list)
    heartbeat_at: float | None = None
    heartbeat_error: str | None = None

    def error(self, message: str) -> None:
        if message != self.last_error:
            self.last_error, self.last_error_at = message, time.time()

    def published(self) -> dict[str, str | float | None]:
        """The journal settings ``tain agent status`` shows."""
        return {
            "state": self.state, "current_site": self.current_site, "mode": self.mode,
            "last_error": self.last_error, "last_error_at": self.last_error_at,
            "heartbeat_at": self.heartbeat_at, "heartbeat_error": self.heartbeat_error,
            "warnings": "\n".join(self.warnings[-5:]) or None,
            "queue_length": self.queue_length,
        }


def heartbeat_report(
    status: Status, *, agent_id: str, repo: str, directory: str, site: str
) -> dict[str, Any]:
    """The body of ``POST /api/v1/agents/heartbeat``."""
    return {
        "agent_id": agent_id, "repo": repo, "host": socket.gethostname(),
        "directory": directory, "version": tain.__version__,
        "queue_length": status.queue_length, "last_revision": status.last_revision,
        "current_site": site, "last_error": status.last_error,
    }


class Beating(Protocol):
    label: str
    status: Status

    def heartbeat(self) -> None: ...


def run_heartbeats(
    agents: Sequence[Beating], stop: threading.Event, interval: float,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Report each agent to its current site: as soon as it has one, then every
    ``interval`` seconds, until ``stop``."""
    due = [0.0] * len(agents)
    while not stop.wait(TICK):
        now = clock()
        for i, agent in enumerate(agents):
            if now < due[i] or agent.status.current_site is None:
                continue
            due[i] = now + interval
            try:
                agent.heartbeat()
            except Exception:  # a heartbeat must never take the agent down
                log.debug("heartbeat of %s failed", agent.label, exc_info=True)
