"""What the agent shows: a Rich progress display of the initial sync on a terminal,
plain log lines otherwise (journald, files, pipes).

Log lines always go through ``logging`` (logger ``tain.agent``); on a terminal they are
printed above the progress bars by the same Rich console.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Protocol

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from tain.push.progress import NullProgress, ProgressSink

log = logging.getLogger("tain.agent")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class Display(Protocol):
    """The initial sync of each source: started with how many paths to check, advanced
    as the queue shrinks, done when it is empty for the first time. ``progress`` gives
    a ``ProgressSink`` for the phases of one cycle (reading, uploading)."""

    def initial_started(self, label: str, total: int) -> None: ...

    def initial_advanced(self, label: str, done: int, total: int) -> None: ...

    def initial_done(self, label: str) -> None: ...

    def progress(self, label: str) -> ProgressSink: ...

    def close(self) -> None: ...


class LogDisplay:
    """Plain log lines: one at the start and one at the end of the initial sync."""

    def initial_started(self, label: str, total: int) -> None:
        log.info("%s: initial sync: %d path(s) to send", label, total)

    def initial_advanced(self, label: str, done: int, total: int) -> None:
        pass

    def initial_done(self, label: str) -> None:
        log.info("%s: initial sync done", label)

    def progress(self, label: str) -> ProgressSink:
        return NullProgress()

    def close(self) -> None:
        pass


class RichDisplay:
    """One progress bar per source during its initial sync, on stderr."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            _DoneColumn(), TimeElapsedColumn(), console=console, transient=True,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._progress.start()

    def initial_started(self, label: str, total: int) -> None:
        with self._lock:
            self._tasks[label] = self._progress.add_task(f"initial sync {label}", total=total)

    def initial_advanced(self, label: str, done: int, total: int) -> None:
        with self._lock:
            task = self._tasks.get(label)
            if task is not None:
                self._progress.update(task, completed=done, total=total)

    def initial_done(self, label: str) -> None:
        with self._lock:
            task = self._tasks.pop(label, None)
            if task is not None:
                self._progress.remove_task(task)
        log.info("%s: initial sync done", label)

    def progress(self, label: str) -> ProgressSink:
        return _PhaseBar(self._progress, self._lock, label)

    def close(self) -> None:
        self._progress.stop()


class _PhaseBar:
    """One transient bar for the phase a source's cycle is in."""

    def __init__(self, progress: Progress, lock: threading.Lock, label: str) -> None:
        self._progress, self._lock, self._label = progress, lock, label
        self._task: TaskID | None = None

    def start(self, phase: str, total: int | None = None) -> None:
        self.finish()
        with self._lock:
            self._task = self._progress.add_task(
                f"  {phase} ({self._label})", total=total, bytes=phase == "uploading"
            )

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.advance(self._task, amount)

    def finish(self) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.remove_task(self._task)
                self._task = None


class _DoneColumn(ProgressColumn):
    """``done/total``: counts, or sizes (MiB) for a task made with ``bytes=True``."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else task.total
        if task.fields.get("bytes"):
            done = task.completed / 2**20
            whole = "?" if task.total is None else f"{task.total / 2**20:.1f}"
            return Text(f"{done:.1f}/{whole} MiB")
        return Text(f"{int(task.completed)}/{total if isinstance(total, str) else int(total)}")


def open_display(*, tty: bool | None = None, level: int = logging.INFO) -> Display:
    """Set up logging for the agent and return the display for this stderr."""
    tty = sys.stderr.isatty() if tty is None else tty
    logger = logging.getLogger("tain.agent")
    logger.setLevel(level)
    if tty:
        console = Console(stderr=True)
        handler: logging.Handler = RichHandler(console=console, show_path=False)
        display: Display = RichDisplay(console)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
        display = LogDisplay()
    logger.handlers = [handler]
    logger.propagate = False
    return display
