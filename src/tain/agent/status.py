"""``tain agent status``: what an agent is doing, read from its state directory.

Works whether the agent runs or not: the journal is opened read-only (SQLite WAL lets
it read while the agent writes) and the state directory's lock tells whether an agent
holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tain.agent.journal import JOURNAL_NAME, Journal
from tain.agent.lock import holder_pid
from tain.errors import NotFound

_NUMBERS = ("remote_rev", "last_commit_rev", "pid")
_TIMES = ("last_commit_at", "last_error_at", "heartbeat_at", "started_at")


def find_state_dirs(base: Path) -> list[Path]:
    """``base`` itself when it is a state directory, else the state directories in it."""
    if (base / JOURNAL_NAME).is_file():
        return [base]
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if (p / JOURNAL_NAME).is_file())


def read_status(state_dir: Path) -> dict[str, Any]:
    """One agent's status as a JSON-ready record."""
    if not (state_dir / JOURNAL_NAME).is_file():
        raise NotFound(f"no agent state in {state_dir}", hint="see --state-dir")
    journal = Journal(state_dir, readonly=True)
    try:
        meta = journal.meta()
        queue, writing = journal.queue_length(), journal.being_written()
    finally:
        journal.close()
    pid = holder_pid(state_dir)
    running = pid is not None
    state = meta.get("state", "unknown") if running else (
        "crashed" if meta.get("state") == "crashed" else "stopped")
    record: dict[str, Any] = {
        "state_dir": str(state_dir),
        "directory": meta.get("directory"),
        "repo": meta.get("repo"),
        "agent_id": meta.get("agent_id"),
        "running": running,
        "state": state,
        "mode": meta.get("mode") if running else None,
        "queue_length": queue,
        "being_written": writing,
        "current_site": meta.get("current_site") if running else None,
        "sites": meta.get("sites", "").split(),
        "remote_site": meta.get("remote_site"),
        "last_error": meta.get("last_error"),
        "heartbeat_error": meta.get("heartbeat_error"),
        "warnings": [w for w in meta.get("warnings", "").split("\n") if w],
        "version": meta.get("version"),
        "host": meta.get("host"),
    }
    for key in _NUMBERS:
        record[key] = int(meta[key]) if meta.get(key, "").lstrip("-").isdigit() else None
    if not running:
        record["pid"] = None
    for key in _TIMES:
        record[key] = float(meta[key]) if key in meta else None
    return record
