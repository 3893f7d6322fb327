"""The agent process: one thread per source, a heartbeat thread, clean shutdown.

``run_agent`` returns when asked to stop (SIGTERM or SIGINT, or the ``stop`` event of a
caller): every source finishes the step it is in (an upload stops between requests),
writes pending marks to its journal and releases its state directory. Nothing needs
to be flushed for safety (the journal and a stat walk at the next start make sure
nothing is lost); a clean stop is just quicker to resume. The exit status is 1 when a
source stopped on an unexpected error (so a service manager restarts the agent), else 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import tain
from tain.agent.config import AgentConfig
from tain.agent.display import Display, open_display
from tain.agent.heartbeat import run_heartbeats
from tain.agent.source import SourceAgent
from tain.agent.watcher import WatchBudget, Watcher

log = logging.getLogger("tain.agent")


def run_agent(
    config: AgentConfig,
    *,
    stop: threading.Event | None = None,
    tty: bool | None = None,
    handle_signals: bool = True,
    display: Display | None = None,
) -> int:
    """Mirror every source of ``config`` until stopped; returns the exit status. Without
    a ``display``, logging is set up for stderr (Rich on a terminal)."""
    stop = stop or threading.Event()
    display = display or open_display(tty=tty)
    watcher = Watcher()
    agents: list[SourceAgent] = []
    try:
        budget = WatchBudget()
        for source in config.sources:
            agents.append(SourceAgent(source, config.timing, watcher, display, stop=stop,
                                      budget=budget))
        with _signals(stop, agents, enabled=handle_signals):
            return _run(agents, stop, config.timing.heartbeat)
    finally:
        stop.set()
        for agent in agents:
            agent.close()
        watcher.close()
        display.close()


def _run(agents: list[SourceAgent], stop: threading.Event, heartbeat: float) -> int:
    threads = [threading.Thread(target=a.run, name=f"tain-agent-{i}", daemon=True)
               for i, a in enumerate(agents)]
    beat = threading.Thread(target=run_heartbeats, args=(agents, stop, heartbeat),
                            name="tain-heartbeat", daemon=True)
    for thread in threads:
        thread.start()
    beat.start()
    log.info("tain agent %s: mirroring %s", tain.__version__,
             ", ".join(a.label for a in agents))
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(0.2)
        if not stop.is_set() and any(not t.is_alive() for t in threads):
            log.error("a source stopped unexpectedly; stopping the agent")
            _stop(stop, agents)
    stop.set()
    beat.join(timeout=30)
    crashed = any(a.crashed for a in agents)
    log.info("tain agent stopped%s", " after an error" if crashed else "")
    return 1 if crashed else 0


def _stop(stop: threading.Event, agents: list[SourceAgent]) -> None:
    stop.set()
    for agent in agents:
        agent.wake.set()


@contextlib.contextmanager
def _signals(stop: threading.Event, agents: list[SourceAgent], *, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        _stop(stop, agents)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

