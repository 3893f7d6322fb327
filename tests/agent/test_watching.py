"""Events to marks, the recorder, and what the agent does when inotify fails it: lost
events with a queue overflow, and the watch limit (both end in stat walks)."""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
)

import tain.agent.watcher as watcher_module
from tain.agent.config import AgentConfig, Timing, source_config
from tain.agent.display import LogDisplay
from tain.agent.ignore import IgnoreRules
from tain.agent.journal import Journal, Mark
from tain.agent.local import Source
from tain.agent.runner import run_agent
from tain.agent.status import read_status
from tain.agent.watcher import (
    EventRecorder,
    SourceHandler,
    WatchBudget,
    Watcher,
    WatchLimit,
    count_watches,
    limit_error,
)
from tests.agent.conftest import Site, wait_for, wait_identical


class Collect:
    def __init__(self) -> None:
        self.marks: list[Mark] = []

    def add(self, marks: list[Mark]) -> None:
        self.marks.extend(marks)


def handler_for(root: Path) -> tuple[SourceHandler, Collect, list[str]]:
    calls: list[str] = []
    collect = Collect()
    handler = SourceHandler(
        Source(root, IgnoreRules.load(root), (".state",)), collect,  # type: ignore[arg-type]
        on_rules_changed=lambda: calls.append("rules"), on_root_gone=lambda: calls.append("gone"),
        clock=lambda: 5.0,
    )
    return handler, collect, calls


@pytest.mark.parametrize("event, marks", [
    (FileCreatedEvent("{r}/a.txt"), [Mark("a.txt", 5.0, writing=True)]),
    (FileModifiedEvent("{r}/d/a.txt"), [Mark("d/a.txt", 5.0, writing=True)]),
    (FileClosedEvent("{r}/a.txt"), [Mark("a.txt", 5.0)]),
    (FileAttribEvent("{r}/a.txt"), [Mark("a.txt", 5.0)]),
    (DirCreatedEvent("{r}/new"), [Mark("new", 5.0, tree=True)]),
    (DirDeletedEvent("{r}/old"), [Mark("old", 5.0)]),
    (FileMovedEvent("{r}/a", "{r}/b"), [Mark("a", 5.0), Mark("b", 5.0)]),
    (DirMovedEvent("{r}/x", "{r}/y"), [Mark("x", 5.0), Mark("y", 5.0, tree=True)]),
    (FileMovedEvent("{r}/.a.swp", "{r}/a"), [Mark("a", 5.0)]),  # an editor's save
    (FileCreatedEvent("{r}/a.txt~"), []),
    (FileCreatedEvent("{r}/.state/journal.sqlite3"), []),
    (FileOpenedEvent("{r}/a.txt"), []),
    (FileClosedNoWriteEvent("{r}/a.txt"), []),
    (DirModifiedEvent("{r}/d"), []),
    (FileCreatedEvent("/elsewhere/a.txt"), []),
    (FileCreatedEvent(b"{r}/bad\xff.txt"), []),
])
def test_events_become_marks(tmp_path: Path, event: FileSystemEvent, marks: list[Mark]) -> None:
    handler, collect, _ = handler_for(tmp_path)
    r = str(tmp_path)
    for name in ("src_path", "dest_path"):
        value = getattr(event, name)
        if value:
            fixed = (value.replace(b"{r}", r.encode()) if isinstance(value, bytes)
                     else value.replace("{r}", r))
            object.__setattr__(event, name, fixed)
    handler.on_any_event(event)
    assert collect.marks == marks


def test_tainignore_changes_and_a_vanished_root_are_reported(tmp_path: Path) -> None:
    handler, collect, calls = handler_for(tmp_path)
    handler.on_any_event(FileClosedEvent(f"{tmp_path}/.tainignore"))
    handler.on_any_event(DirDeletedEvent(str(tmp_path)))
    assert calls == ["rules", "gone"]
    assert collect.marks == [Mark(".tainignore", 5.0)]


def test_the_recorder_writes_marks_in_batches(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    woken = threading.Event()
    recorder = EventRecorder(Journal(tmp_path, journal.seq), woken.set)
    recorder.start()
    recorder.add([Mark(f"f{i}", 1.0) for i in range(500)])
    assert recorder.flush(timeout=10)
    assert journal.queue_length() == 500 and woken.is_set()
    assert recorder.last_event_at is not None
    recorder.close()
    journal.close()


def test_the_recorder_gathers_a_burst_into_one_write_unless_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watcher_module, "GATHER_SECONDS", 30.0)
    journal = Journal(tmp_path)
    writer = Journal(tmp_path, journal.seq)
    batches: list[int] = []
    record_marks = writer.record_marks

    def counted(marks: list[Mark]) -> None:
        batches.append(len(marks))
        record_marks(marks)

    monkeypatch.setattr(writer, "record_marks", counted)
    recorder = EventRecorder(writer, lambda: None)
    recorder.start()
    for i in range(100):  # one event at a time, as the watcher hands them over
        recorder.add([Mark(f"f{i}", 1.0)])
    assert recorder.flush(timeout=10)  # cuts the 30 s gathering short
    assert batches == [100] and journal.queue_length() == 100
    recorder.close()
    journal.close()


def test_overflow_log_records_reach_the_listeners() -> None:
    watcher = Watcher()
    heard: list[str] = []
    watcher.on_overflow(lambda: heard.append("overflow"))
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost")
        logging.getLogger("watchdog.observers.inotify_c").warning("something else")
    finally:
        watcher.close()
    assert heard == ["overflow"]


def test_limits_come_with_the_fix(tmp_path: Path) -> None:
    watches = limit_error(OSError(errno.ENOSPC, "inotify watch limit reached"), tmp_path)
    assert isinstance(watches, WatchLimit)
    assert "max_user_watches" in str(watches) and "sysctl" in str(watches)
    instances = limit_error(OSError(errno.EMFILE, "too many"), tmp_path)
    assert "max_user_instances" in str(instances)
    fdinfo = "pos:\t0\nflags:\t02004000\ninotify wd:2 ino:1 sdev:1 mask:fce\ninotify wd:1 ino:2\n"
    assert count_watches(fdinfo) == 2
    budget = WatchBudget(lambda: 5)
    assert budget.short_by("a", 3) == 0
    assert budget.short_by("b", 4) == 2  # 7 directories, 5 watches


# --- the agent in this process ---------------------------------------------------------------


@pytest.fixture
def in_process(tmp_path: Path, site: Site) -> Iterator[tuple[Path, Path, threading.Event]]:
    """Runs the agent in a thread of this process; yields (directory, state, stop)."""
    root, state = tmp_path / "src", tmp_path / "state"
    root.mkdir()
    (root / "first.txt").write_text("first")
    stop = threading.Event()
    config = AgentConfig(
        (source_config(root, repo="mirror", sites=[site.url], token=site.token, env={},
                       state_dir=state),),
        Timing(heartbeat=1, rescan=0, degraded_rescan=1, max_backoff=1),
    )
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(run_agent(
        config, stop=stop, handle_signals=False, display=LogDisplay())))
    thread.start()
    try:
        yield root, state, stop
    finally:
        stop.set()
        thread.join(timeout=30)
    assert codes == [0]


def test_lost_events_are_found_after_an_overflow(
    in_process: tuple[Path, Path, threading.Event], site: Site,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, _, _ = in_process
    wait_identical(root, site.url, site.token)
    monkeypatch.setattr(SourceHandler, "on_any_event", lambda self, event: None)  # all lost
    (root / "first.txt").unlink()
    (root / "lost").mkdir()
    (root / "lost" / "found.txt").write_text("found by the rescan")
    time.sleep(0.3)  # the events arrive (and are dropped) before the overflow is reported
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost")
    wait_identical(root, site.url, site.token)


@pytest.fixture
def no_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Watcher, root: Path, handler: SourceHandler) -> None:
        raise limit_error(OSError(errno.ENOSPC, "inotify watch limit reached"), root)

    monkeypatch.setattr(Watcher, "watch", refuse)


def test_the_watch_limit_falls_back_to_rescans(
    no_watches: None, in_process: tuple[Path, Path, threading.Event], site: Site
) -> None:
    root, state, _ = in_process
    wait_identical(root, site.url, site.token)
    (root / "later.txt").write_text("seen by a periodic rescan")
    wait_identical(root, site.url, site.token)
    wait_for(lambda: read_status(state)["mode"] == "rescanning", "the status to show it")
    status = read_status(state)
    assert any("max_user_watches" in w for w in status["warnings"])


def test_the_terminal_display_draws_and_logs() -> None:
    import io

    from rich.console import Console

    from tain.agent.display import RichDisplay, open_display

    out = io.StringIO()
    display = RichDisplay(Console(file=out, force_terminal=True, width=100))
    display.initial_started("www:/srv/www", 10)
    display.initial_advanced("www:/srv/www", 4, 10)
    bar = display.progress("www:/srv/www")
    bar.start("uploading", 100)
    bar.advance(50)
    bar.finish()
    display.initial_done("www:/srv/www")
    display.close()
    assert "initial sync www:/srv/www" in out.getvalue()
    logger = logging.getLogger("tain.agent")
    saved = logger.handlers[:], logger.propagate, logger.level
    try:
        assert isinstance(open_display(tty=False), LogDisplay)
        assert logger.handlers and not logger.propagate
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
