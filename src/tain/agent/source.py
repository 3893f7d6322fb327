"""One source's agent: watch, reconcile, sync, fail over; in a thread of its own.

The loop, once started:

1. watch the directory (events → marks in the journal), then walk it once: what
   changed while the agent was away is queued, unchanged files are not read;
2. pick a site (``SiteSelector``) and catch up with it (``catch_up``): the journal must
   describe that site's head before anything is sent there;
3. whenever the debounce policy lets a batch go: expand tree marks (walk the new or
   moved directories), then run one ``Cycle`` (one revision);
4. on a site failure (no connection, timeout, 5xx, or a refusal) put the site on hold
   and go on with the next one; with none left keep journaling and retry later;
   on ``Conflict`` (someone else moved the repository) catch up and go on;
5. rescan (a full stat walk) after an inotify overflow, when ``.tainignore`` changes,
   every ``Timing.rescan``, and every ``Timing.degraded_rescan`` while inotify cannot
   watch the whole directory.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from watchdog.observers.api import ObservedWatch

import tain
from tain.agent.config import SourceConfig, Timing
from tain.agent.debounce import Policy, batch_size, cycle_start_at, updated_rate
from tain.agent.display import Display
from tain.agent.heartbeat import Status, heartbeat_report
from tain.agent.ignore import IgnoreRules
from tain.agent.journal import DirtyItem, Journal, JournalError
from tain.agent.local import Source
from tain.agent.lock import StateLock
from tain.agent.reconcile import Stopped, walk
from tain.agent.sites import SiteLink
from tain.agent.sync import Cycle, CycleOptions, CycleReport
from tain.agent.throttle import Throttle
from tain.agent.watcher import (
    QUEUE_HINT,
    WATCHES_HINT,
    EventRecorder,
    SourceHandler,
    WatchBudget,
    Watcher,
    WatchLimit,
)
from tain.client import SiteClient
from tain.core.units import human_size
from tain.errors import Conflict, ReadOnlyMirror, TainError, UsageError

log = logging.getLogger("tain.agent")
IDLE_TICK = 1.0
TREES_PER_ROUND = 200
BURST_SECONDS = 10.0  # cycles back to back before the loop's other duties get a turn
UPLOAD_BATCH = 4 << 20  # bytes per chunk upload: a few requests in flight stay small
MIN_BATCH_BYTES = 1 << 20


@dataclass(frozen=True)
class _InFlight:
    """A cycle whose commit runs in the committer thread."""

    cycle: Cycle
    paths: int
    future: Future[CycleReport]


class SourceAgent:
    def __init__(
        self,
        config: SourceConfig,
        timing: Timing,
        watcher: Watcher,
        display: Display,
        *,
        stop: threading.Event,
        budget: WatchBudget | None = None,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.timing = timing
        self.label = config.label
        self.watcher = watcher
        self.display = display
        self.stop = stop
        self.budget = budget or WatchBudget()
        self.policy = policy or Policy()
        self.clock = clock
        self.status = Status()
        self.wake = threading.Event()
        self._state_lock = StateLock(config.state_dir)
        try:
            self.journal = Journal(config.state_dir)
            self.journal.reset_times()
            self.agent_id = self._identity()
            self.source = Source(config.directory, self._rules(), self._excluded())
            self.recorder = EventRecorder(
                Journal(config.state_dir, self.journal.seq, fsync=False), self.wake.set,
                clock=clock,
            )
            self.commit_journal = Journal(config.state_dir, self.journal.seq)
        except BaseException:
            self._state_lock.release()
            raise
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="tain-commit")
        self._settled_at = 0.0  # when the last commit was taken note of
        self.sites = SiteLink(config, timing, self.journal, stop=stop, clock=clock, rng=rng)
        self.throttle = Throttle(config.bwlimit) if config.bwlimit else None
        self._watch: ObservedWatch | None = None
        self._rescan_at = 0.0
        self._rescan_reason: str | None = "start"
        self._rules_changed = False
        self._root_gone = False
        self._initial: int | None = None  # paths of the initial sync, while it runs
        self._rate: float | None = None  # paths per second of recent cycles
        self._published: dict[str, str | float | None] = {}
        self._ask_site: dict[str, bool] = {}  # per site: does the next stream ask first
        self.crashed = False
        self._closed = False
        self._close_lock = threading.Lock()

    # -- setup -------------------------------------------------------------------------------

    def _identity(self) -> str:
        agent_id = self.journal.get("agent_id")
        if agent_id is None:
            agent_id = uuid.uuid4().hex
        self.journal.set({
            "agent_id": agent_id, "directory": str(self.config.directory),
            "repo": self.config.repo, "sites": " ".join(self.config.sites),
            "pid": os.getpid(), "version": tain.__version__, "started_at": time.time(),
            "state": "starting", "host": socket.gethostname(),
        })
        return agent_id

    def _rules(self) -> IgnoreRules:
        return IgnoreRules.load(self.config.directory, self.config.ignore,
                                defaults=self.config.default_ignores)

    def _excluded(self) -> tuple[str, ...]:
        """The state directory, when it lies inside the source directory."""
        try:
            inside = self.config.state_dir.resolve().relative_to(self.config.directory)
        except ValueError:
            return ()
        return (inside.as_posix(),) if inside.parts else ()

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """The agent's thread: returns when ``stop`` is set (or on a fatal error)."""
        try:
            self._run()
        except Stopped:
            pass
        except Exception as exc:
            self.crashed = True
            log.exception("%s: the agent stopped on an unexpected error", self.label)
            self.status.error(f"unexpected error: {exc}")
        finally:
            self.close()

    def _run(self) -> None:
        self.recorder.start()
        self._start_watching()
        self.watcher.on_overflow(self._overflowed)
        while not self.stop.is_set():
            self.wake.clear()
            try:
                timeout = self._step()
                self._publish_status()
            except JournalError as exc:  # a local disk problem: log it, try again soon
                log.error("%s: %s", self.label, exc)
                self.status.error(str(exc))
                timeout = self.timing.backoff * 4
            if timeout > 0:
                self.wake.wait(min(timeout, IDLE_TICK))

    def _step(self) -> float:
        """Do the next thing; return how long to wait before the one after."""
        if self._root_gone and not self._root_back():
            return IDLE_TICK
        site: str | None = None
        try:
            if self._rescan_due():
                self._rescan()
            site = self.sites.selector.choose()
            if site is None:
                self._set_state("offline", None)
                return self.sites.selector.wait_time()
            return self._on_site(site)
        except JournalError:
            raise
        except ReadOnlyMirror as exc:  # a mirror (maybe a demoted primary): like a site down
            if site is None:
                raise
            self.status.error(f"{site}: {exc}")
            self.sites.failed(site, exc)
            return 0.0
        except Conflict as exc:
            if site is not None:
                self.sites.conflicted(site, exc)
            return 0.0
        except TainError as exc:
            if isinstance(exc, UsageError) and self._root_missing():
                return IDLE_TICK
            if site is None:
                raise
            self.status.error(f"{site}: {exc}")
            self.sites.failed(site, exc)
            return 0.0

    def _on_site(self, site: str) -> float:
        client = self.sites.ready(site)
        self.status.last_revision = self.sites.head
        self._set_state("idle", site)
        if self.sites.failback():
            return 0.0
        self.sites.verify(site)
        self._track_initial(self.journal.queue_length())
        start = cycle_start_at(self.journal.next_ready_at(self.policy),
                               self.recorder.last_event_at, self.policy)
        now = self.clock()
        if start is None or start > now:
            return IDLE_TICK if start is None else start - now
        items = self._ready_items()
        if not items:  # only directories to walk: walk them now (else between cycles)
            self._expand_trees()
            items = self._ready_items()
        if items:
            self._set_state("syncing", site)
            self._publish_status()
            self._run_cycles(client, site, items)
        return 0.0

    # -- cycles ---------------------------------------------------------------------------------

    def _run_cycles(self, client: SiteClient, site: str, items: list[DirtyItem]) -> None:
        """Cycles back to back while paths are ready (at most ``BURST_SECONDS``, then the
        loop's other duties get a turn). Each cycle is read and its small files sent
        here (``Cycle.prepare``) while the one before commits in the committer thread
        (``Cycle.commit``): a burst goes at the pace of the slower half, not of both.
        A commit in flight is always waited for and recorded, whatever happens here."""
        started = self.clock()
        in_flight: _InFlight | None = None
        try:
            while items:
                cycle = self._cycle(client, site)
                cycle.prepare(items)
                self._ask_site[site] = cycle.ask_site
                if in_flight is not None:
                    self._settle(in_flight, site)
                in_flight = _InFlight(cycle, len(items), self._committer.submit(
                    cycle.commit, self.commit_journal))
                if self._interrupted() or self.clock() - started > BURST_SECONDS:
                    break
                self._expand_trees()
                items = self._ready_items(exclude=cycle.taken.keys())
        except BaseException:
            if in_flight is not None:
                self._settle_quietly(in_flight, site)
            raise
        if in_flight is not None:
            self._settle(in_flight, site)

    def _ready_items(self, exclude: Collection[str] = ()) -> list[DirtyItem]:
        """The next cycle's paths: about ``cycle_seconds`` of work at the rate seen."""
        return self.journal.ready(self.clock(), self.policy, batch_size(self._rate, self.policy),
                                  exclude=exclude)

    def _interrupted(self) -> bool:
        return (self.stop.is_set() or self._root_gone or self._rules_changed
                or self._rescan_reason is not None)

    def _settle(self, in_flight: _InFlight, site: str) -> None:
        """Wait for a commit in flight and take note of it; raises its failure."""
        report = in_flight.future.result()
        now = self.clock()
        self._rate = updated_rate(self._rate, in_flight.paths,
                                  now - max(in_flight.cycle.started, self._settled_at))
        self._settled_at = now
        self._report(report, site)
        self.sites.committed(site, report.revision)
        self._publish_status()
        self._track_initial(self.status.queue_length)  # the initial sync's display

    def _settle_quietly(self, in_flight: _InFlight, site: str) -> None:
        """``_settle`` while another failure is on its way: this one is only logged."""
        try:
            self._settle(in_flight, site)
        except Exception as exc:
            log.warning("%s: the commit in flight failed as well: %s", self.label, exc)

    def _expand_trees(self) -> None:
        """Walk directories created or moved in, queueing what they hold. A directory
        read by the walk of one above it needs no walk of its own: its mark was made
        before that walk began, so the walk saw what its watch may have missed."""
        pending = {t.path: t.seq for t in self.journal.ready_trees(self.clock(), self.policy,
                                                                   TREES_PER_ROUND)}
        for path in list(pending):
            if path not in pending:
                continue  # read by an earlier walk of this round
            result = walk(self.source, self.journal, path, stop=self.stop, note=pending.keys())
            self._warn_all(result.warnings)
            self.journal.untree([(p, pending.pop(p)) for p in result.noted | {path}
                                 if p in pending])

    def _cycle(self, client: SiteClient, site: str) -> Cycle:
        options = CycleOptions(
            repo=self.config.repo, site=site,
            message=f"tain agent {socket.gethostname()}:{self.config.directory}",
            workers=self.config.parallel, batch_bytes=self._batch_bytes(),
            before_send=self._before_send, ask_site=self._ask_site.get(site, True),
        )
        return Cycle(self.source, self.journal, client, options,
                     flush_events=self.recorder.flush, stop=self.stop, clock=self.clock,
                     progress=self.display.progress(self.label))

    def _batch_bytes(self) -> int:
        if self.config.bwlimit is None:
            return UPLOAD_BATCH
        return max(MIN_BATCH_BYTES, min(UPLOAD_BATCH, self.config.bwlimit // 2))

    def _before_send(self, size: int) -> None:
        if self.throttle is not None and self.stop.wait(self.throttle.reserve(size)):
            raise Stopped

    def _report(self, report: CycleReport, site: str) -> None:
        self._warn_all(report.warnings)
        if report.revision is not None and report.created:
            self.status.last_revision = report.revision
            log.info(
                "%s: revision %d at %s: %d put, %d deleted, %d file(s) read, %s sent%s (%s)",
                self.label, report.revision, site, report.puts, report.deletes,
                report.files_read, human_size(report.bytes_sent),
                f", {report.deferred} still changing" if report.deferred else "",
                ", ".join(f"{k} {v:.2f} s" for k, v in report.seconds.items()),
            )

    def _track_initial(self, queued: int) -> None:
        """Drive the initial-sync display from the queue length: it starts once the
        agent is caught up with a site for the first time and ends when the queue is
        empty for the first time."""
        if self._initial is None:
            self._initial = queued or -1
            if queued:
                self.display.initial_started(self.label, queued)
            return
        if self._initial < 0:
            return
        self._initial = total = max(self._initial, queued)
        self.display.initial_advanced(self.label, total - queued, total)
        if queued == 0:
            self.display.initial_done(self.label)
            self._initial = -1

    # -- rescans and watching -----------------------------------------------------------------

    def _start_watching(self) -> None:
        handler = SourceHandler(
            self.source, self.recorder, on_rules_changed=self._rules_touched,
            on_root_gone=self._root_vanished, clock=self.clock,
        )
        try:
            self._watch = self.watcher.watch(self.config.directory, handler)
            self.status.mode = "inotify"
        except WatchLimit as exc:
            self._degrade(str(exc))

    def _rescan_due(self) -> bool:
        if self._rules_changed:
            self._rules_changed = False
            try:
                self.source.rules = self._rules()
                self._rescan_reason = ".tainignore changed"
            except UsageError as exc:
                log.error("%s: %s; keeping the rules in use", self.label, exc)
                self.status.error(str(exc))
        now = self.clock()
        if self._rescan_reason is None:
            # without inotify the walks are all there is: never switched off
            every = max(1.0, self.timing.degraded_rescan) if self.status.mode != "inotify" \
                else self.timing.rescan
            if every > 0 and now >= self._rescan_at + every:
                self._rescan_reason = "periodic"
        return self._rescan_reason is not None

    def _rescan(self) -> None:
        reason, self._rescan_reason = self._rescan_reason, None
        if self.status.mode != "inotify" and self._watch is not None:
            self.watcher.unwatch(self._watch)  # watch again: the limit may have been raised
            self._watch = None
        if self._watch is None:
            self._start_watching()
        started = self.clock()
        bar = self.display.progress(self.label)
        bar.start("scanning")
        try:
            result = walk(self.source, self.journal, stop=self.stop, progress=bar.advance)
        finally:
            bar.finish()
        self._rescan_at = self.clock()
        self.journal.prune_cache()
        self._warn_all(result.warnings)
        log.info("%s: scanned %d path(s) in %.1fs (%s): %d queued", self.label,
                 result.examined, self._rescan_at - started, reason, result.queued)
        missing = self.budget.short_by(self.label, result.dirs) if self._watch else 0
        if missing:
            self._degrade(
                f"inotify watches {self.config.directory} only partly ({missing} of "
                f"{result.dirs} directories unwatched): the watch limit is reached; {WATCHES_HINT}"
            )
        elif self._watch is not None and self.status.mode != "inotify":
            log.info("%s: inotify watches everything again", self.label)
            self.status.mode = "inotify"

    def _degrade(self, why: str) -> None:
        if self.status.mode == "inotify":
            log.warning("%s: %s; meanwhile the directory is rescanned every %.0fs",
                        self.label, why, self.timing.degraded_rescan)
            self.status.warnings.append(why)
        self.status.mode = "rescanning"

    def _overflowed(self) -> None:
        log.warning("%s: the inotify event queue overflowed; rescanning the directory (%s)",
                    self.label, QUEUE_HINT)
        self._rescan_reason = "inotify overflow"
        self.wake.set()

    def _rules_touched(self) -> None:
        self._rules_changed = True
        self.wake.set()

    def _root_vanished(self) -> None:
        self._root_gone = True
        self.wake.set()

    def _root_missing(self) -> bool:
        if self.config.directory.is_dir():
            return False
        self._root_vanished()
        return True

    def _root_back(self) -> bool:
        if not self.config.directory.is_dir():
            self._set_state("waiting", self.sites.selector.current)
            self.status.error(f"the source directory {self.config.directory} is gone; "
                        "nothing is deleted from the site while it is away")
            return False
        log.info("%s: the source directory is back", self.label)
        self._root_gone = False
        if self._watch is not None:
            self.watcher.unwatch(self._watch)
            self._watch = None
        self._rescan_reason = "directory back"
        return True

    # -- status ---------------------------------------------------------------------------------

    def _set_state(self, state: str, site: str | None) -> None:
        self.status.state, self.status.current_site = state, site

    def _warn_all(self, warnings: list[str]) -> None:
        for warning in warnings[:20]:
            log.warning("%s: %s", self.label, warning)
        if len(warnings) > 20:
            log.warning("%s: ... and %d more warning(s)", self.label, len(warnings) - 20)

    def _publish_status(self) -> None:
        """Write the status for ``tain agent status`` when it changed."""
        self.status.queue_length = self.journal.queue_length()
        values = self.status.published()
        if values != self._published:
            self.journal.set(values)
            self._published = values

    def heartbeat(self) -> None:
        """Tell the current site about this agent (called from the heartbeat thread)."""
        status, site = self.status, self.status.current_site
        if site is None:
            return
        report = heartbeat_report(status, agent_id=self.agent_id, repo=self.config.repo,
                                  directory=str(self.config.directory), site=site)
        try:
            answer = self.sites.client(site, "heartbeat").agent_heartbeat(report)
        except TainError as exc:
            status.heartbeat_error = f"{site}: {exc}"
            return
        status.heartbeat_at, status.heartbeat_error = time.time(), None
        if isinstance(answer.get("head"), int):
            self.sites.head_seen(answer["head"])

    # -- shutdown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Release everything (idempotent; also for an agent that never ran)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._watch is not None:
            self.watcher.unwatch(self._watch)
            self._watch = None
        self.recorder.close()
        try:
            self.status.state = "stopped" if not self.crashed else "crashed"
            self._publish_status()
        except TainError:
            pass
        self._committer.shutdown(wait=True)
        self.sites.close()
        self.commit_journal.close()
        self.journal.close()
        self._state_lock.release()

