"""Scrub: read stored blobs, check their SHA-256, report, and repair what is wrong.

Which blobs
    The catalog's blob rows, in name order. SHA-256 names are uniform, so a run with
    ``fraction`` f reads the slice ``[cursor, cursor + f)`` of the 64-bit name prefix
    space (wrapping round) and leaves the cursor at its end in ``state/scrub.json``:
    runs with f = 0.1 cover every blob in ten runs, whatever was added meanwhile (a new
    blob waits at most one pass). An interrupted run saves how far it got.

How
    A store with the scrub capability (``tain.store.scrub``) has every copy read in
    full, bypassing the verified-read cache; any other store is read through ``open``.
    Blobs are checked by a few threads (hashing releases the GIL), each read throttled
    by one token bucket when a rate limit is set.

Repair, in this order
    1. from a good local copy (``repair``: wanted copies rewritten atomically, bad and
       surplus copies removed), so a blob is back to ``copies`` copies;
    2. when no good copy is left, from another site (the upstream or a mirror) given as
       a ``RemoteSource``: a ``(repo, path, revision)`` that uses the blob is fetched,
       and its SHA-256 checked before anything is stored.
    A blob that gc removed while the scrub ran is not a problem. Bad copies that other
    names still linked to (hard links in the published trees) were quarantined by the
    store; the scrub points those names at a good copy, then drops the bad one.

Each run appends a "scrub" entry to the audit log: counts, bytes, duration, the slice,
and the problems (the first ``AUDIT_PROBLEMS``) with what was repaired.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from tain.errors import Conflict, IntegrityError, NotFound, StorageError, TainError
from tain.service.site import Site
from tain.store.durable import write_json_atomically
from tain.store.scrub import (
    BlobCheck,
    CopyCheck,
    CopyState,
    OnRead,
    Quarantine,
    ScrubbableStore,
    hash_file,
)

log = logging.getLogger("tain.scrub")

SPACE = 1 << 64  # blob names are sliced by their first 16 hex digits
PAGE = 500
AUDIT_PROBLEMS = 100
KEPT_PROBLEMS = 10_000  # listed in a report; beyond that they are only counted
STATE_FILE = "scrub.json"


class Progress(Protocol):
    """The shape of ``tain.push.progress.ProgressSink``: the CLI passes its bars."""

    def start(self, phase: str, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...

    def finish(self) -> None: ...


class RemoteSource(Protocol):
    """Another site holding the same repositories at the same revisions."""

    name: str

    def fetch(self, repo: str, path: str, rev: int, out: BinaryIO) -> None:
        """Write the file's bytes at that revision to ``out``; raise a TainError if it
        cannot (the caller checks the digest)."""
        ...


@dataclass(frozen=True)
class ScrubOptions:
    fraction: float = 1.0
    rate_limit: int | None = None  # bytes per second read from disk
    repair: bool = True
    remote: RemoteSource | None = None
    workers: int = 2
    actor: str = "scrub"


@dataclass
class Problem:
    sha256: str
    size: int
    copies: list[dict[str, object]]
    lost: bool  # no good copy was left on this site
    repaired: bool = False
    source: str | None = None  # where the good bytes came from
    error: str | None = None

    @property
    def found(self) -> str:
        return ", ".join(f"{c['state']} {c['location']}" for c in self.copies) or "no copy"

    @property
    def outcome(self) -> str:
        if self.repaired:
            return f"repaired from {self.source}"
        return self.error or "not repaired"


@dataclass
class ScrubReport:
    started_at: float
    fraction: float
    slice_start: str
    slice_end: str
    finished_at: float = 0.0
    complete: bool = False
    blobs_checked: int = 0
    bytes_read: int = 0
    blobs_ok: int = 0
    repaired: int = 0
    unrepaired: int = 0
    vanished: int = 0
    relinked: int = 0
    rate_limit: int | None = None
    repair_from: str | None = None
    problems_total: int = 0
    problems: list[Problem] = field(default_factory=list)  # the first KEPT_PROBLEMS

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    @property
    def ok(self) -> bool:
        return self.unrepaired == 0

    def to_json(self, *, max_problems: int | None = None) -> dict[str, Any]:
        body = asdict(self)
        body["duration"] = round(self.duration, 3)
        body["ok"] = self.ok
        body["problems"] = [asdict(p) for p in self.problems[:max_problems]]
        return body


class RateLimiter:
    """A token bucket over bytes: ``take(n)`` returns once ``n`` more bytes fit in
    ``rate`` bytes per second (with bursts of up to ``burst`` bytes). Thread-safe."""

    def __init__(
        self,
        rate: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self._clock, self._sleep = clock, sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            debt = -self._tokens
        if debt > 0:
            self._sleep(debt / self.rate)


def plan_slice(cursor: int, fraction: float) -> tuple[list[tuple[str, str | None]], int]:
    """The name bounds ``(after, below)`` a run reads, and the cursor it leaves.

    ``fraction`` is taken as a fraction with a denominator of at most a million, so
    ``1/fraction`` runs of it cover the whole space exactly.
    """
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    step = min(SPACE, math.ceil(Fraction(fraction).limit_denominator(1_000_000) * SPACE))
    start = cursor % SPACE
    end = start + step
    ranges = [(start, min(end, SPACE))]
    if end > SPACE:
        ranges.append((0, end - SPACE))
    bounds = [(_prefix(a), _prefix(b) if b < SPACE else None) for a, b in ranges if b > a]
    return bounds, end % SPACE


def _prefix(position: int) -> str:
    return f"{position:016x}"


def _position(sha: str) -> int:
    return int(sha[:16], 16)


def scrub(
    site: Site,
    options: ScrubOptions,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ScrubReport:
    """One scrub run over this run's slice; see the module docstring. ``clock`` and
    ``sleep`` drive the rate limit; setting ``cancel`` ends the run after the blob in
    hand. Raises ``Conflict`` if another scrub of the site is running."""
    state_dir = site.config.site_dir / "state"
    state_dir.mkdir(exist_ok=True)
    with _exclusive(state_dir / "scrub.lock"):
        cursor = int(read_state(site).get("cursor", 0))
        bounds, next_cursor = plan_slice(cursor, options.fraction)
        report = ScrubReport(
            started_at=site.clock(), fraction=options.fraction,
            slice_start=_prefix(cursor), slice_end=_prefix(next_cursor),
            rate_limit=options.rate_limit,
            repair_from=options.remote.name if options.remote else None,
        )
        limiter = (RateLimiter(options.rate_limit, clock=clock, sleep=sleep)
                   if options.rate_limit else None)
        worker = _Worker(site, options, state_dir, limiter.take if limiter else None)
        reached = _check_slice(site, bounds, worker, report, progress, cancel)
        if options.repair:
            report.relinked = relink_quarantined(site)
        report.finished_at = site.clock()
        _write_state(state_dir, {
            "cursor": next_cursor if report.complete else (reached or cursor),
            "last_run": {"finished_at": report.finished_at, "complete": report.complete,
                         "blobs_checked": report.blobs_checked,
                         "unrepaired": report.unrepaired},
        })
    site.catalog.record_event(
        options.actor, "scrub", "site", **report.to_json(max_problems=AUDIT_PROBLEMS)
    )
    log.info(
        "scrub: %d blobs, %d bytes read in %.1fs, %d problem(s), %d repaired, %d not",
        report.blobs_checked, report.bytes_read, report.duration, report.problems_total,
        report.repaired, report.unrepaired,
    )
    return report


def _check_slice(
    site: Site,
    bounds: list[tuple[str, str | None]],
    worker: _Worker,
    report: ScrubReport,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> int | None:
    """Check every blob in ``bounds`` into ``report``; returns the name position reached
    when cancelled (None when complete or nothing was checked)."""
    if progress is not None:
        total = sum(site.catalog.blob_totals(after=a, below=b)[0] for a, b in bounds)
        progress.start("scrubbing", total)
    reached: int | None = None
    results = _in_order(worker.check, _names(site, bounds), worker.options.workers)
    try:
        with contextlib.closing(results):
            for sha, outcome in results:
                _tally(report, outcome)
                reached = _position(sha)
                if progress is not None:
                    progress.advance(1)
                if cancel is not None and cancel.is_set():
                    return reached
        report.complete = True
        return None
    finally:
        if progress is not None:
            progress.finish()


def last_run_time(site: Site) -> float | None:
    """When the last scrub of this site finished, from ``state/scrub.json``."""
    last = read_state(site).get("last_run")
    finished = last.get("finished_at") if isinstance(last, dict) else None
    return float(finished) if isinstance(finished, int | float) else None


def read_state(site: Site) -> dict[str, Any]:
    try:
        raw = json.loads((site.config.site_dir / "state" / STATE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


@dataclass
class _Outcome:
    bytes_read: int
    problem: Problem | None = None
    vanished: bool = False


class _Worker:
    """Checks and repairs one blob; called from several threads at once."""

    def __init__(
        self, site: Site, options: ScrubOptions, state_dir: Path, on_read: OnRead | None
    ) -> None:
        self.site, self.options, self.state_dir, self.on_read = site, options, state_dir, on_read

    def check(self, item: tuple[str, int]) -> _Outcome:
        sha, size = item
        store = self.site.store
        try:
            if isinstance(store, ScrubbableStore):
                check = store.check_copies(sha, self.on_read)
            else:
                check = _check_by_open(self.site, sha, self.on_read)
        except TainError as exc:
            log.error("scrub: cannot check blob %s: %s", sha, exc)
            return _Outcome(0, Problem(sha, size, [], lost=False, error=str(exc)))
        if check.healthy:
            return _Outcome(check.bytes_read)
        if not self.site.catalog.known_blobs([sha]):
            return _Outcome(check.bytes_read, vanished=True)  # gc took it meanwhile
        problem = Problem(sha, size, [c.to_json() for c in check.bad], lost=check.lost)
        if not check.bad:
            problem.copies = [{"state": "too few copies", "location": f"{check.good} good"}]
        log.error("scrub: blob %s: %s", sha, problem.found)
        if self.options.repair:
            self._repair(check, problem)
        return _Outcome(check.bytes_read, problem)

    def _repair(self, check: BlobCheck, problem: Problem) -> None:
        try:
            if not check.lost:
                self._repair_locally(check)
                problem.source = "local copy"
            elif self.options.remote is not None:
                problem.source = self._repair_from_remote(check, self.options.remote)
            else:
                problem.error = "no good copy left; give another site with --repair-from"
                return
        except TainError as exc:
            problem.error = str(exc)
            log.error("scrub: cannot repair blob %s: %s", check.sha256, exc)
            return
        problem.repaired = True
        log.warning("scrub: repaired blob %s from %s", check.sha256, problem.source)

    def _repair_locally(self, check: BlobCheck) -> None:
        store = self.site.store
        if not isinstance(store, ScrubbableStore):
            raise IntegrityError(f"blob {check.sha256} cannot be repaired in place here")
        store.repair(check)

    def _repair_from_remote(self, check: BlobCheck, remote: RemoteSource) -> str:
        sha = check.sha256
        uses = self.site.catalog.blob_uses(sha)
        if not uses:
            raise NotFound(f"no kept revision uses blob {sha}, so no site can send it")
        failures: list[str] = []
        for repo, path, rev in uses:
            with tempfile.TemporaryFile(dir=self.state_dir, prefix="fetch-") as tmp:
                try:
                    remote.fetch(repo, path, rev, tmp)
                except TainError as exc:
                    failures.append(f"{repo}/{path}@{rev}: {exc}")
                    continue
                tmp.seek(0)
                digest, _ = hash_file(tmp)
                if digest != sha:
                    failures.append(f"{repo}/{path}@{rev}: the bytes hash to {digest}")
                    continue
                tmp.seek(0)
                self._store_fetched(check, tmp)
            return f"{remote.name} ({repo}/{path}@{rev})"
        raise IntegrityError(
            f"blob {sha}: {remote.name} could not send it: " + "; ".join(failures[:3])
        )

    def _store_fetched(self, check: BlobCheck, source: BinaryIO) -> None:
        store = self.site.store
        if isinstance(store, ScrubbableStore):
            store.repair(check, source)
            return
        store.delete(check.sha256)  # a bad object would make the write a no-op
        with store.new_blob() as writer:
            while block := source.read(1 << 20):
                writer.write(block)
            writer.commit(check.sha256)


def _check_by_open(site: Site, sha: str, on_read: OnRead | None) -> BlobCheck:
    """A check through ``BlobStore.open`` for a store without the scrub capability."""
    location = f"blob {sha}"
    try:
        with site.store.open(sha) as f:
            digest, size = hash_file(f, on_read)
    except NotFound:
        return BlobCheck(sha, (CopyCheck(location, CopyState.MISSING, True),), 1, 0)
    except IntegrityError as exc:
        return BlobCheck(sha, (CopyCheck(location, CopyState.CORRUPT, True, str(exc)),), 1, 0)
    except (StorageError, OSError) as exc:
        copy = CopyCheck(location, CopyState.UNREADABLE, True, str(exc))
        return BlobCheck(sha, (copy,), 1, 0)
    state = CopyState.OK if digest == sha else CopyState.CORRUPT
    return BlobCheck(sha, (CopyCheck(location, state, True),), 1, size)


def _tally(report: ScrubReport, outcome: _Outcome) -> None:
    report.blobs_checked += 1
    report.bytes_read += outcome.bytes_read
    if outcome.vanished:
        report.vanished += 1
    elif outcome.problem is None:
        report.blobs_ok += 1
    else:
        report.problems_total += 1
        if len(report.problems) < KEPT_PROBLEMS:
            report.problems.append(outcome.problem)
        if outcome.problem.repaired:
            report.repaired += 1
        else:
            report.unrepaired += 1


def _names(site: Site, bounds: list[tuple[str, str | None]]) -> Iterator[tuple[str, int]]:
    for after, below in bounds:
        while page := site.catalog.blob_page(after=after, below=below, limit=PAGE):
            yield from page
            after = page[-1][0]


def _in_order(
    fn: Callable[[tuple[str, int]], _Outcome],
    items: Iterator[tuple[str, int]],
    workers: int,
) -> Generator[tuple[str, _Outcome], None, None]:
    """``fn`` over ``items`` on ``workers`` threads, results in input order, with a
    bounded number in flight (so a cancelled run stops soon and memory stays flat)."""
    window: deque[tuple[str, Future[_Outcome]]] = deque()
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="tain-scrub") as pool:
        try:
            for item in items:
                window.append((item[0], pool.submit(fn, item)))
                if len(window) >= 2 * max(1, workers):
                    sha, fut = window.popleft()
                    yield sha, fut.result()
            while window:
                sha, fut = window.popleft()
                yield sha, fut.result()
        finally:
            for _, fut in window:
                fut.cancel()


def relink_quarantined(site: Site) -> int:
    """Point published files that still share a replaced bad copy's bytes at a good
    copy, then drop the bad copy. Returns how many published files were re-pointed."""
    store = site.store
    if not isinstance(store, Quarantine):
        return 0
    relinked = 0
    for copy in store.quarantined():
        try:
            bad = os.stat(copy.location)
            good = site.store.local_path(copy.sha256)
        except FileNotFoundError:
            continue
        except TainError as exc:
            if isinstance(exc, NotFound):  # the blob itself is gone (gc)
                store.release(copy)
            else:
                log.error("scrub: quarantined %s kept: %s", copy.location, exc)
            continue
        if good is None:
            continue
        for repo, path, _ in site.catalog.blob_uses(copy.sha256, limit=10_000):
            relinked += _relink_published(site.config.published_dir, repo, path, bad, good)
        store.release(copy)
    return relinked


def _relink_published(
    published: Path, repo: str, path: str, bad: os.stat_result, good: Path
) -> int:
    """Replace ``path`` in both trees behind ``published/<repo>`` if it is ``bad``."""
    state_dir = published / ".tain" / repo
    if not state_dir.is_dir():
        return 0
    count = 0
    with open(state_dir / "lock", "w") as lock:  # the publisher's lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        for tree in ("a", "b"):
            target = state_dir / tree / path
            try:
                st = target.lstat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) != (bad.st_dev, bad.st_ino):
                continue
            tmp = target.with_name(f".{target.name}.tain-relink")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            try:
                os.link(good, tmp)
            except OSError:  # the good copy is on another disk: copy it
                shutil.copyfile(good, tmp)
                os.chmod(tmp, st.st_mode & 0o7777)
                os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(tmp, target)
            count += 1
            log.warning("scrub: published %s/%s now links to a good copy", repo, path)
    return count


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("a scrub is already running on this site") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    write_json_atomically(state_dir / STATE_FILE, state)
