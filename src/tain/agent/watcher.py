"""From inotify (watchdog) events to durable queue marks.

``SourceHandler`` turns each event into marks (a created directory or one moved in is
marked as a tree, so its content is found by a walk even if it was filled before its
watch existed). ``EventRecorder`` writes the marks to the journal from a thread of its
own, everything pending in one transaction, so a burst costs few commits and the
watchdog thread never waits for the disk. ``Watcher`` owns the one watchdog observer
of the process and reports what inotify cannot do:

* a queue overflow (the kernel dropped events): watchdog logs it; we hear the log
  record and every source schedules a full stat walk;
* the watch limit (``ENOSPC`` from inotify_add_watch) or the instance limit
  (``EMFILE``): for the top directory ``watch`` raises ``WatchLimit``; below it watchdog
  skips the directory silently, so ``count_inotify_watches`` lets the agent compare
  the watches it holds with the directories it mirrors.

Either way the agent falls back to periodic stat walks and says how to raise the limit.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import (
    DirAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from tain.agent.journal import Journal, Mark
from tain.agent.local import Source
from tain.core.paths import normalize_path
from tain.errors import InvalidPath, TainError

log = logging.getLogger("tain.agent")

EVENTS = [  # the frequent first: watchdog tests each event against the list in order
    FileModifiedEvent, FileClosedEvent, FileCreatedEvent, DirCreatedEvent, FileDeletedEvent,
    DirDeletedEvent, FileMovedEvent, DirMovedEvent, FileAttribEvent, DirAttribEvent,
]
WATCHES_HINT = (
    "raise the limit, e.g. 'sysctl fs.inotify.max_user_watches=1048576' (and put "
    "'fs.inotify.max_user_watches = 1048576' in /etc/sysctl.d/90-tain.conf to keep it)"
)
INSTANCES_HINT = (
    "raise the limit, e.g. 'sysctl fs.inotify.max_user_instances=1024' (and put it in "
    "/etc/sysctl.d/90-tain.conf to keep it)"
)
QUEUE_HINT = (
    "if it happens often, raise the queue, e.g. 'sysctl fs.inotify.max_queued_events=1048576' "
    "(and put it in /etc/sysctl.d/90-tain.conf to keep it)"
)
RETRY_SECONDS = 1.0
GATHER_SECONDS = 0.01


class WatchLimit(TainError):
    """inotify cannot watch the whole directory (watch or instance limit reached)."""

    exit_code = 7
    code = "watch_limit"


class EventRecorder:
    """Buffers marks and writes them to the journal in batches, from its own thread.

    The first mark after a write wakes the thread, which then lets a burst gather for
    ``GATHER_SECONDS`` (cut short by ``flush``): one transaction and one wake-up for
    many events instead of one each (a mark is ready only ``settle`` after its event
    anyway)."""

    def __init__(
        self,
        journal: Journal,
        on_recorded: Callable[[], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._journal = journal
        self._on_recorded = on_recorded
        self._clock = clock
        self._cond = threading.Condition()
        self._buffer: list[Mark] = []
        self._added = 0
        self._written = 0
        self._closing = False
        self._flushing = 0
        self.last_event_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="tain-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, marks: Iterable[Mark]) -> None:
        with self._cond:
            before = len(self._buffer)
            self._buffer.extend(marks)
            if len(self._buffer) == before:
                return
            self._added += len(self._buffer) - before
            self.last_event_at = self._clock()
            if before == 0:  # the thread waits for a first mark, then gathers the rest
                self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every mark added so far is in the journal; False on timeout."""
        with self._cond:
            target = self._added
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._written >= target or
                                           not self._thread.is_alive(), timeout)
            finally:
                self._flushing -= 1

    def close(self) -> None:
        """Write what is pending, then stop the thread."""
        self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._journal.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._buffer or self._closing)
                if not self._buffer:
                    return
                self._cond.wait_for(lambda: self._flushing or self._closing, GATHER_SECONDS)
                batch, self._buffer = self._buffer, []
            while not self._write(batch):
                with self._cond:
                    if self._closing:
                        return
                    self._cond.wait(RETRY_SECONDS)
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
            self._on_recorded()

    def _write(self, batch: list[Mark]) -> bool:
        try:
            self._journal.record_marks(batch)
        except TainError as exc:  # the next stat walk finds these changes anyway
            log.error("cannot queue %d change(s) in the journal: %s; retrying", len(batch), exc)
            return False
        return True


class SourceHandler(FileSystemEventHandler):
    """Maps one source's watchdog events to marks, dropping ignored paths."""

    def __init__(
        self,
        source: Source,
        recorder: EventRecorder,
        *,
        on_rules_changed: Callable[[], None],
        on_root_gone: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._recorder = recorder
        self._on_rules_changed = on_rules_changed
        self._on_root_gone = on_root_gone
        self._clock = clock
        self._root = str(source.root)
        self._prefix = self._root + os.sep
        self.bad_names = 0

    def on_any_event(self, event: FileSystemEvent) -> None:
        now = self._clock()
        marks = list(self.marks_for(event, now))
        if marks:
            self._recorder.add(marks)

    def marks_for(self, event: FileSystemEvent, now: float) -> Iterable[Mark]:
        """The marks one event stands for."""
        is_dir = event.is_directory
        if isinstance(event, FileMovedEvent | DirMovedEvent):
            yield from self._mark(event.src_path, now, is_dir=is_dir)
            yield from self._mark(event.dest_path, now, is_dir=is_dir, tree=is_dir)
        elif isinstance(event, DirCreatedEvent):
            yield from self._mark(event.src_path, now, is_dir=True, tree=True)
        elif isinstance(event, FileCreatedEvent | FileModifiedEvent):
            yield from self._mark(event.src_path, now, is_dir=False, writing=True)
        elif isinstance(event, DirDeletedEvent) and self._relative(event.src_path) == "":
            self._on_root_gone()
        elif isinstance(event, FileClosedEvent | FileDeletedEvent | DirDeletedEvent
                        | FileAttribEvent | DirAttribEvent):
            yield from self._mark(event.src_path, now, is_dir=is_dir)

    def _mark(
        self, raw: bytes | str, now: float, *, is_dir: bool, writing: bool = False,
        tree: bool = False,
    ) -> Iterable[Mark]:
        path = self._relative(raw)
        if not path:
            return
        try:
            path = normalize_path(path)
        except InvalidPath:
            self.bad_names += 1
            return
        if path == ".tainignore":
            self._on_rules_changed()
        if self._source.skipped(path, is_dir=is_dir):
            return
        yield Mark(path, now, writing=writing, tree=tree)

    def _relative(self, raw: bytes | str) -> str | None:
        text = os.fsdecode(raw)
        if text == self._root:
            return ""
        if not text.startswith(self._prefix):
            return None
        return text[len(self._prefix):]


class Watcher:
    """The process's watchdog observer; sources add their directories to it."""

    def __init__(self) -> None:
        self._observer = Observer()
        self._lock = threading.Lock()
        self._overflow: list[Callable[[], None]] = []
        self._hook = _OverflowHook(self._overflowed)
        logging.getLogger("watchdog.observers").addHandler(self._hook)
        self._observer.start()

    def watch(self, root: Path, handler: SourceHandler) -> ObservedWatch:
        """Watch ``root`` recursively (symlinks are never followed)."""
        try:
            return self._observer.schedule(handler, str(root), recursive=True,
                                           event_filter=EVENTS)
        except OSError as exc:
            raise limit_error(exc, root) from exc

    def unwatch(self, watch: ObservedWatch) -> None:
        with contextlib.suppress(KeyError, OSError):
            self._observer.unschedule(watch)

    def on_overflow(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._overflow.append(callback)

    def _overflowed(self) -> None:
        with self._lock:
            callbacks = list(self._overflow)
        for callback in callbacks:
            callback()

    def close(self) -> None:
        logging.getLogger("watchdog.observers").removeHandler(self._hook)
        self._observer.stop()
        self._observer.join(timeout=10)


class WatchBudget:
    """Directories the sources of this process mirror, against inotify watches held
    (watchdog skips a subdirectory it cannot watch without a word)."""

    def __init__(self, count: Callable[[], int | None] | None = None) -> None:
        self._count = count or count_inotify_watches
        self._dirs: dict[str, int] = {}
        self._lock = threading.Lock()

    def short_by(self, label: str, dirs: int) -> int:
        """Record ``dirs`` for ``label``; how many watches are missing (0: none)."""
        with self._lock:
            self._dirs[label] = dirs
            expected = sum(self._dirs.values())
        held = self._count()
        return 0 if held is None else max(0, expected - held)


class _OverflowHook(logging.Handler):
    """Hears watchdog say that inotify dropped events or could not re-add watches."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().lower()
        if "overflow" in text or "unable to rebuild" in text:
            self._callback()


def limit_error(exc: OSError, root: Path) -> TainError:
    """The error (with the fix) for an OSError from adding an inotify watch."""
    if exc.errno == errno.ENOSPC:
        return WatchLimit(
            f"inotify watch limit reached while watching {root} "
            f"(fs.inotify.max_user_watches = {read_limit('max_user_watches')})",
            hint=WATCHES_HINT,
        )
    if exc.errno == errno.EMFILE:
        return WatchLimit(
            f"inotify instance limit reached while watching {root} "
            f"(fs.inotify.max_user_instances = {read_limit('max_user_instances')})",
            hint=INSTANCES_HINT,
        )
    return WatchLimit(f"cannot watch {root}: {exc.strerror or exc}")


def read_limit(name: str) -> str:
    try:
        return Path(f"/proc/sys/fs/inotify/{name}").read_text().strip()
    except OSError:
        return "unknown"


def count_watches(fdinfo: str) -> int:
    """Inotify watches listed in one ``/proc/<pid>/fdinfo/<fd>`` text."""
    return sum(1 for line in fdinfo.splitlines() if line.startswith("inotify wd:"))


def count_inotify_watches(proc: Path = Path("/proc/self")) -> int | None:
    """Watches held by this process's inotify instances (None: not on Linux)."""
    try:
        fds = os.listdir(proc / "fd")
    except OSError:
        return None
    total = 0
    for fd in fds:
        try:
            if os.readlink(proc / "fd" / fd) != "anon_inode:inotify":
                continue
            total += count_watches((proc / "fdinfo" / fd).read_text())
        except OSError:
            continue
    return total
