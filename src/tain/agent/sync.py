"""One sync cycle: turn a batch of ready queue items into one revision.

``prepare`` does what does not depend on the site's tree, and may run while the
previous cycle's commit is in flight:

1. Look at each path now (``Source.observe``). A file whose stamp matches trusted cached
   digests is not read; any other file is read once, producing its SHA-256 and its
   chunk list from the same bytes (``read_snapshot``), and is kept only if its stamp
   did not move during the read. A small file's bytes are kept and streamed to the
   site whole (``SmallFileStream``) while the others are read.

``commit`` runs once the cycle before it is recorded:

2. Torn-read guard: once events have had ``EVENT_MARGIN`` after the last read to
   arrive, a file that was changed again since it was taken is dropped from this
   cycle (it is still queued, as being written). Together with the stamp check this
   means committed bytes are always one complete state of the file. The guard is
   here, not at the end of ``prepare``: while the commit before is in flight the
   margin passes anyway, so a burst's cycles do not wait for it one after another.
3. Compare with what the site holds; build puts (with every ancestor directory the
   site lacks) and deletes (the topmost only).
4. Ask which blobs and chunks the site lacks; upload those chunks (re-read by offset
   and checked against their BLAKE3, so a file that changed since is dropped, never
   sent torn); commit with ``base_rev`` = the head the journal describes.
5. Record the commit in the journal and clear the items in the same transaction.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from tain.agent.journal import CachedFile, DirtyItem, Journal
from tain.agent.local import Observed, Source, same_state, trusted, with_digest
from tain.agent.reconcile import Stopped
from tain.client import BlobsUnsupported, CommitResult, SiteClient
from tain.core.manifest import Change, Entry, Kind
from tain.core.paths import ancestors
from tain.errors import MissingData, RemoteError
from tain.push.progress import NullProgress, ProgressSink
from tain.push.scan import FileChanged
from tain.push.upload import (
    ChunkLocator,
    ChunkUploader,
    FileChunks,
    SmallFileStream,
    read_snapshot,
    split_small,
)

EVENT_MARGIN = 0.05
READ_BUDGET = 1 << 30
KEEP_BUDGET = 32 << 20  # small files' bytes kept in memory from the read, per cycle
COMMIT_ATTEMPTS = 4
_LATER = Observed("", None, unknown=True)


@dataclass(frozen=True)
class CycleOptions:
    repo: str
    site: str
    message: str
    workers: int = 4
    batch_bytes: int = 16 * 1024 * 1024
    before_send: Callable[[int], None] | None = None
    ask_site: bool = True
    """Whether the first batch of small files asks the site what it lacks (the stream
    of the cycle before says; ``SmallFileStream.ask``)."""


@dataclass
class CycleReport:
    revision: int | None = None
    created: bool = False
    puts: int = 0
    deletes: int = 0
    files_read: int = 0
    bytes_read: int = 0
    bytes_sent: int = 0
    chunks_sent: int = 0
    deferred: int = 0
    postponed: int = 0
    cleared: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each phase (read, plan, upload, commit, record), for the log line."""

    def timed(self, phase: str, started: float, now: float) -> float:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - started
        return now


class Cycle:
    def __init__(
        self,
        source: Source,
        journal: Journal,
        client: SiteClient,
        options: CycleOptions,
        *,
        flush_events: Callable[[], object],
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        progress: ProgressSink | None = None,
    ) -> None:
        self.progress = progress or NullProgress()
        self.source = source
        self.journal = journal
        self.client = client
        self.options = options
        self.flush_events = flush_events
        self.stop = stop
        self.clock = clock
        self.wall_ns = wall_ns
        self.report = CycleReport()
        self.snapshots: dict[str, FileChunks] = {}
        self.read_spans: dict[str, float] = {}  # path -> end of its read
        self.deferred: set[str] = set()
        self.postponed: set[str] = set()
        self.to_cache: list[tuple[str, CachedFile]] = []
        self.kept_bytes = 0  # small files' bytes kept from their read, for the upload
        self.taken: dict[str, DirtyItem] = {}
        self.started = clock()
        self.local: dict[str, Entry | None] = {}
        self.on_site: set[str] = set()  # blobs the site was seen to hold during prepare
        self.ask_site = options.ask_site  # for the next cycle's stream

    def run(self, items: Sequence[DirtyItem]) -> CycleReport:
        self.prepare(items)
        return self.commit()

    def prepare(self, items: Sequence[DirtyItem]) -> None:
        """Everything that does not depend on the site's tree: read the taken paths,
        send small files whole meanwhile. It may run while the previous cycle's commit
        is in flight (paths taken by that one are not here)."""
        t = self.clock()
        with SmallFileStream(self.client, self.options.repo, workers=self.options.workers,
                             before_send=self._before_send,
                             ask=self.options.ask_site) as stream:
            self.taken = {item.path: item for item in items}
            self.local = self._local_states(self.taken, stream)
            if self.to_cache:
                self.journal.store_cached(self.to_cache)
            stream.finish()
            self.on_site = stream.on_site
            self.ask_site = stream.ask
        # sent: the bytes need not wait in memory for the commit (a file the site turns
        # out to lack after all is read again, and checked, like a large one)
        self.snapshots = {p: replace(snap, data=None) if snap.data is not None else snap
                          for p, snap in self.snapshots.items()}
        self.report.bytes_sent, self.report.chunks_sent = stream.bytes_sent, stream.files_sent
        self.report.timed("read", t, self.clock())

    def commit(self, journal: Journal | None = None) -> CycleReport:
        """Compare with the site's tree as the journal has it now, upload what the site
        lacks still, commit one revision and record it. ``journal``: a connection of
        the thread this runs in, when that is not the one ``prepare`` ran in."""
        if journal is not None:
            self.journal = journal
        self._guard_torn_reads(self.taken)
        t = self.clock()
        remote = self.journal.remote_entries(self.local)
        puts, deletes = self._changes(self.local, remote)
        self.report.timed("plan", t, self.clock())
        self._check_stop()
        done = [(p, item.seq) for p, item in self.taken.items()
                if p not in self.deferred and p not in self.postponed]
        self.report.deferred, self.report.postponed = len(self.deferred), len(self.postponed)
        if not puts and not deletes:
            self.journal.clear(done)
            self.report.cleared = len(done)
            return self.report
        result, puts = self._send(puts, deletes)
        t = self.clock()
        done = [(p, s) for p, s in done if p not in self.deferred]
        if result is None:
            self.journal.clear(done)
            self.report.cleared, self.report.deferred = len(done), len(self.deferred)
            return self.report
        self.journal.apply_commit(
            puts, deletes, done,
            {"remote_site": self.options.site, "remote_rev": result.number,
             "last_commit_rev": result.number, "last_commit_at": self.wall_ns() / 1e9,
             "last_commit_site": self.options.site},
        )
        self.report.timed("record", t, self.clock())
        self.report.revision, self.report.created = result.number, result.created
        self.report.puts, self.report.deletes = len(puts), len(deletes)
        self.report.cleared = len(done)
        self.report.deferred = len(self.deferred)
        return self.report

    # -- 1. local states -------------------------------------------------------------------

    def _local_states(
        self, taken: dict[str, DirtyItem], stream: SmallFileStream
    ) -> dict[str, Entry | None]:
        """Each taken path's local state (None: absent), files read as needed. Paths
        that could not be examined, were deferred or postponed (over the read budget of
        one cycle) are left out; only deferred and postponed ones stay queued."""
        local: dict[str, Entry | None] = {}
        self.progress.start("reading", len(taken))
        seen = [self.source.observe(path) for path in taken]
        files = [o for o in seen if o.entry is not None and o.entry.kind is Kind.FILE]
        cache = self._cached_digests(files)
        for observed in seen:
            self.progress.advance()
            if observed.warning:
                self.report.warnings.append(observed.warning)
            if observed.unknown:
                continue
            if observed.entry is not None and observed.entry.kind is Kind.FILE:
                observed = self._with_digest(observed, cache.get(observed.path), stream)
                if observed.unknown:
                    continue
            local[observed.path] = observed.entry
        self.progress.finish()
        return local

    def _cached_digests(self, files: Sequence[Observed]) -> dict[str, CachedFile]:
        """The trusted cached digests of each file that has some: cached under its path,
        else under another path with the very same stamp (a moved file). Two queries
        for the whole cycle, not two a file."""
        stamps = {o.path: o.stamp for o in files if o.stamp is not None}
        by_path = self.journal.cached_many(stamps)
        found = {p: c for p, st in stamps.items()
                 if (c := by_path.get(p)) is not None and trusted(c, st)}
        moved = {p: st for p, st in stamps.items() if p not in found}
        by_inode = self.journal.cached_by_inodes(st.inode for st in moved.values())
        for path, stamp in moved.items():
            match = next((c for c in by_inode.get(stamp.inode, ()) if trusted(c, stamp)), None)
            if match is not None:
                found[path] = match
        return found

    def _with_digest(
        self, observed: Observed, cached: CachedFile | None, stream: SmallFileStream
    ) -> Observed:
        """A file's state with its SHA-256: from ``cached`` (trusted digests, see
        ``_cached_digests``) if any, else read now. ``unknown`` when it is left for later
        (deferred or postponed)."""
        entry, stamp = observed.entry, observed.stamp
        if entry is None or stamp is None:
            return observed
        location = self.source.location(observed.path)
        if cached is not None:
            self.snapshots[observed.path] = FileChunks(
                observed.path, location, stamp, entry.mode, cached.sha256, cached.chunks
            )
            return Observed(observed.path, with_digest(entry, cached.sha256), stamp)
        if self.report.bytes_read >= READ_BUDGET:
            self.postponed.add(observed.path)
            return _LATER
        return self._read(observed.path, stream)

    def _read(self, path: str, stream: SmallFileStream) -> Observed:
        self._check_stop()
        hashed_ns = self.wall_ns()
        try:
            snap = read_snapshot(path, self.source.location(path),
                                 keep_small=self.kept_bytes < KEEP_BUDGET)
        except (FileNotFoundError, NotADirectoryError):
            now = self.source.observe(path)
            if now.entry is None and not now.unknown:
                return now  # it is gone: send that
            return self._defer(path)
        except FileChanged:
            return self._defer(path)
        except OSError as exc:  # unreadable: the site keeps what it has; the next
            # change or rescan of the path tries again
            self.report.warnings.append(f"{path}: cannot read ({exc.strerror}); not sent")
            return _LATER
        self.read_spans[path] = self.clock()
        self.report.files_read += 1
        self.report.bytes_read += snap.stamp.size
        self.snapshots[path] = snap
        self.kept_bytes += len(snap.data or b"")
        stream.add(snap)  # a small file goes to the site while others are read
        self.to_cache.append((path, CachedFile(snap.stamp, hashed_ns, snap.sha256, snap.chunks)))
        entry = Entry(path, Kind.FILE, snap.mode, snap.stamp.mtime_ns, snap.sha256,
                      snap.stamp.size)
        return Observed(path, entry, snap.stamp)

    def _defer(self, path: str) -> Observed:
        """The file is being changed: leave it queued, as being written."""
        self.deferred.add(path)
        self.journal.defer([path], self.clock())
        return _LATER

    # -- 2. torn reads ---------------------------------------------------------------------

    def _guard_torn_reads(self, taken: dict[str, DirtyItem]) -> None:
        """Drop every file read in this cycle that changed again after it was taken."""
        if not self.read_spans:
            return
        wait = max(self.read_spans.values()) + EVENT_MARGIN - self.clock()
        if wait > 0 and self.stop.wait(wait):
            raise Stopped
        self.flush_events()
        now = self.journal.current(self.read_spans)
        for path in self.read_spans:
            row = now.get(path)
            if row is not None and row.seq > taken[path].seq:
                self.deferred.add(path)
                self.snapshots.pop(path, None)

    # -- 3. changes ----------------------------------------------------------------------

    def _changes(
        self, local: dict[str, Entry | None], remote: dict[str, Entry]
    ) -> tuple[list[Entry], list[str]]:
        puts: dict[str, Entry] = {}
        deleted: list[str] = []
        for path, entry in local.items():
            if path in self.deferred or same_state(entry, remote.get(path)):
                continue
            if entry is None:
                deleted.append(path)
            else:
                puts[path] = entry
        deleted_set = set(deleted)
        deletes = sorted(p for p in deleted if not any(a in deleted_set for a in ancestors(p)))
        self._add_ancestors(puts, deleted_set)
        return [puts[p] for p in sorted(puts)], deletes

    def _add_ancestors(self, puts: dict[str, Entry], deleted: set[str]) -> None:
        """Every put needs its parents as directories on the site: add the ones the
        site lacks (so the journal knows them); a put whose parent is gone waits."""
        needed = {a for p in puts for a in ancestors(p)} - puts.keys()
        remote = self.journal.remote_entries(needed)
        for path in sorted(puts, key=lambda p: p.count("/")):
            for parent in ancestors(path):
                if path not in puts:
                    break
                held = puts.get(parent) or remote.get(parent)
                if held is not None and held.kind is Kind.DIR and parent not in deleted:
                    continue
                observed = self.source.observe(parent)
                if observed.entry is None or observed.entry.kind is not Kind.DIR:
                    self._drop_put(puts, path)
                    break
                puts[parent] = observed.entry

    def _drop_put(self, puts: dict[str, Entry], path: str) -> None:
        for p in [p for p in puts if p == path or p.startswith(path + "/")]:
            del puts[p]
            self.deferred.add(p)
        self.journal.defer([path], self.clock())

    # -- 4. upload and commit -----------------------------------------------------------------

    def _send(
        self, puts: list[Entry], deletes: list[str]
    ) -> tuple[CommitResult | None, list[Entry]]:
        """Upload what the site lacks and commit; None when nothing was left to send."""
        locator = ChunkLocator()
        uploader = ChunkUploader(
            self.client, self.options.repo, locator, self.progress,
            batch_bytes=self.options.batch_bytes, workers=self.options.workers,
            before_send=self._before_send,
        )
        t = self.clock()
        lacking = self._lacking(puts)
        self._upload(uploader, locator, puts, lacking)
        t = self.report.timed("upload", t, self.clock())
        commit_id = str(uuid.uuid4())
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            puts = [e for e in puts if e.path not in self.deferred]
            changes = [Change("delete", p) for p in deletes] + [
                Change("put", e.path, e, self._chunks(e, lacking)) for e in puts
            ]
            if not changes:
                return None, []
            try:
                result = self.client.commit(
                    self.options.repo, changes, message=self.options.message,
                    commit_id=commit_id, base_rev=self._base_rev(),
                )
            except MissingData as err:
                t = self.report.timed("commit", t, self.clock())
                if attempt == COMMIT_ATTEMPTS:
                    raise
                if err.details.get("paths") or err.details.get("missing"):
                    self.on_site.clear()  # what was seen there may have gone since
                    lacking |= self._lacking(puts)
                named = {str(d) for d in err.details.get("chunks") or ()}
                self._upload(uploader, locator, puts, lacking, extra=named)
                t = self.report.timed("upload", t, self.clock())
                continue
            self.report.timed("commit", t, self.clock())
            self.report.bytes_sent += uploader.bytes_sent
            self.report.chunks_sent += uploader.chunks_sent
            return result, puts
        raise RemoteError("the site kept asking for data")  # pragma: no cover

    def _base_rev(self) -> int | None:
        record = self.journal.remote_record()
        return record[1] if record is not None and record[0] == self.options.site else None

    def _lacking(self, puts: Iterable[Entry]) -> set[str]:
        """SHA-256 of the put files whose blobs the site lacks; those it was seen to
        hold during ``prepare`` are not asked about again (should one have gone since,
        the commit answers missing_data and it is sent then)."""
        shas = sorted({e.sha256 for e in puts if e.kind is Kind.FILE and e.sha256}
                      - self.on_site)
        return set(self.client.missing(self.options.repo, blobs=shas).blobs) if shas else set()

    def _chunks(self, entry: Entry, lacking: set[str]) -> tuple[tuple[str, int], ...]:
        if entry.kind is not Kind.FILE or entry.sha256 not in lacking:
            return ()
        snap = self.snapshots.get(entry.path)
        return snap.chunk_pairs() if snap is not None else ()

    def _upload(
        self,
        uploader: ChunkUploader,
        locator: ChunkLocator,
        puts: list[Entry],
        lacking: set[str],
        extra: set[str] | None = None,
    ) -> None:
        """Upload what the site lacks: small files whole (the site stores them at once,
        and they leave ``lacking``), the chunks it lacks of the others. A file that
        changed since it was read is dropped from this cycle (and stays queued)."""
        snaps = [snap for entry in puts
                 if entry.sha256 in lacking and entry.path not in self.deferred
                 and (snap := self.snapshots.get(entry.path)) is not None]
        for snap in snaps:
            locator.add(snap)
        small, rest = split_small(snaps, self.client)
        if small:
            self.progress.start("uploading", sum(s.stamp.size for s in small))
            try:
                self._until_sent(locator, lambda: uploader.upload_blobs(
                    s for s in small if s.path not in self.deferred))
                lacking -= {s.sha256 for s in small if s.path not in self.deferred}
            except BlobsUnsupported:
                rest += small
        needed: set[str] = set(extra or ())
        needed.update(c.digest for s in rest if s.path not in self.deferred for c in s.chunks)
        if not needed:
            return
        missing = set(self.client.missing(self.options.repo, chunks=sorted(needed)).chunks)
        uploader.sent -= missing
        self.progress.start("uploading", uploader.total_bytes(missing))
        self._until_sent(locator, lambda: uploader.upload(
            d for d in missing if locator.knows(d)))

    def _until_sent(self, locator: ChunkLocator, send: Callable[[], None]) -> None:
        """Run ``send`` until it gets through without a file changing under it; each
        file that changed is deferred and forgotten, so the next round passes it over."""
        while True:
            try:
                send()
                self.progress.finish()
                return
            except FileChanged as changed:
                locator.forget(changed.path)
                self.deferred.add(changed.path)
                self.journal.defer([changed.path], self.clock())

    def _before_send(self, size: int) -> None:
        self._check_stop()
        if self.options.before_send is not None:
            self.options.before_send(size)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped
