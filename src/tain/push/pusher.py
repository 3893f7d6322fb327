"""``push_directory``: make a repository's head equal a local directory.

Plan the changes against the remote head, ask which blobs the site lacks, take the chunk
lists of those files (made by the scan's one read of each new file, kept in the hash
cache; read again only when missing or stale), upload only the chunks the site lacks,
and commit everything in one request with ``base_rev`` = the head that was read. The
commit is idempotent (a client-made ``commit_id``), so it is simply repeated after the
site names data it still lacks.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tain.client import BlobsUnsupported, CommitResult, SiteClient
from tain.core.manifest import Change, Entry, Kind, plan_changes
from tain.errors import Conflict, MissingData
from tain.push.cache import FileStamp, HashCache, default_cache_path
from tain.push.progress import NullProgress, ProgressSink
from tain.push.scan import FileChanged, ScanResult, scan_directory
from tain.push.upload import (
    ChunkLocator,
    ChunkUploader,
    FileChunks,
    chunk_file,
    split_small,
)

COMMIT_BATCH = 50_000
COMMIT_ATTEMPTS = 4
CHANGE_ATTEMPTS = 3
UPLOAD_WORKERS = 4  # requests in flight: the site stores one batch while the next is read


@dataclass
class PushResult:
    """What a push did. ``revision`` is None when nothing changed (or a dry run);
    ``bytes_hashed`` counts bytes read to hash or chunk; ``bytes_sent`` counts
    compressed chunk bytes on the wire."""

    revision: int | None = None
    added: int = 0
    changed: int = 0
    deleted: int = 0
    bytes_hashed: int = 0
    bytes_sent: int = 0
    chunks_sent: int = 0
    files_scanned: int = 0
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)


def push_directory(
    client: SiteClient,
    repo: str,
    directory: Path,
    *,
    message: str = "",
    progress: ProgressSink | None = None,
    dry_run: bool = False,
    cache_path: Path | None = None,
) -> PushResult:
    """Push ``directory`` into ``repo``; the hash cache defaults to the user cache dir."""
    progress = progress or NullProgress()
    path = cache_path or default_cache_path(directory, client.base_url, repo)
    with HashCache(path) as cache:
        scan = scan_directory(directory, cache=cache, progress=progress, exclude=cache.files())
        session = _PushSession(client, repo, scan, cache, progress)
        result = session.run(message, dry_run=dry_run)
        cache.save()
    return result


class _PushSession:
    def __init__(
        self,
        client: SiteClient,
        repo: str,
        scan: ScanResult,
        cache: HashCache,
        progress: ProgressSink,
    ) -> None:
        self.client = client
        self.repo = repo
        self.cache = cache
        self.progress = progress
        self.entries = dict(scan.entries)
        self.files = scan.files
        self.result = PushResult(
            bytes_hashed=scan.bytes_hashed, files_scanned=scan.files_scanned,
            warnings=list(scan.warnings),
        )
        self.locator = ChunkLocator()
        self.uploader = ChunkUploader(
            client, repo, self.locator, progress, workers=UPLOAD_WORKERS
        )
        self.chunked: dict[str, FileChunks] = {}
        self.attempts: Counter[str] = Counter()
        self.dropped: set[str] = set()

    def run(self, message: str, *, dry_run: bool) -> PushResult:
        """Plan and push; re-plan once when the head moved before the commit."""
        for attempt in range(2):
            head = int(self.client.get_repo(self.repo)["head"])
            remote = self._remote_tree(head)
            changes = plan_changes(self._local_view(remote), remote)
            if dry_run:
                self.result.dry_run = True
                self._count(changes, remote)
                break
            try:
                self._push(changes, head, remote, message)
                break
            except Conflict:
                if attempt:
                    raise
        self.result.chunks_sent = self.uploader.chunks_sent
        self.result.bytes_sent = self.uploader.bytes_sent
        return self.result

    def _remote_tree(self, head: int) -> dict[str, Entry]:
        if head == 0:
            return {}
        self.progress.start("remote")
        entries = {}
        for entry in self.client.iter_tree(self.repo, rev=head):
            entries[entry.path] = entry
            self.progress.advance()
        self.progress.finish()
        return entries

    def _local_view(self, remote: Mapping[str, Entry]) -> dict[str, Entry]:
        """The local entries, with files we gave up on left as the site has them."""
        local = dict(self.entries)
        for path in self.dropped:
            if path in remote:
                local[path] = remote[path]
            else:
                local.pop(path, None)
        return local

    def _push(
        self, changes: list[Change], head: int, remote: Mapping[str, Entry], message: str
    ) -> None:
        if not changes:
            return
        self._prepare(changes)
        batches = [changes[i : i + COMMIT_BATCH] for i in range(0, len(changes), COMMIT_BATCH)]
        base = head
        for number, batch in enumerate(batches, 1):
            text = message if len(batches) == 1 else f"{message} (part {number}/{len(batches)})"
            committed = self._commit(batch, base, text)
            if committed is not None:
                base = committed[0].number
                self._count(committed[1], remote)
        self.result.revision = base if base != head else None

    def _prepare(self, changes: Sequence[Change]) -> None:
        """Upload the chunks of every put file whose blob the site lacks."""
        self._upload(self._chunk_paths(self._lacking_blobs(changes)))

    def _lacking_blobs(self, changes: Sequence[Change]) -> list[str]:
        """The put files whose content the site does not hold."""
        puts = [c.path for c in changes if _is_file_put(c) and c.path not in self.dropped]
        shas = sorted({self.entries[p].sha256 or "" for p in puts})
        lacking = set(self.client.missing(self.repo, blobs=shas).blobs)
        return [p for p in puts if self.entries[p].sha256 in lacking]

    def _chunk_paths(self, paths: Sequence[str]) -> set[str]:
        """Chunk the files not chunked yet; return the chunks of ``paths`` the site lacks."""
        groups: dict[str, list[str]] = {}
        for path in paths:
            if path not in self.chunked and path not in self.dropped:
                groups.setdefault(self.entries[path].sha256 or "", []).append(path)
        total = sum(self.entries[members[0]].size for members in groups.values())
        self.progress.start("chunk", total)
        for members in groups.values():
            self._chunk_group(members)
        self.progress.finish()
        snaps = {self.chunked[p].sha256: self.chunked[p] for p in paths if p in self.chunked}
        small, rest = split_small(snaps.values(), self.client)
        try:
            extra = self._send_whole(small)
        except BlobsUnsupported:  # an older site: as chunks, like the rest
            extra, rest = set(), rest + small
        digests = {r.digest for snap in rest for r in snap.chunks}
        return extra | set(self.client.missing(self.repo, chunks=sorted(digests)).chunks)

    def _send_whole(self, small: list[FileChunks]) -> set[str]:
        """Upload small files whole, as blobs; returns the chunks the site lacks of
        those that changed meanwhile (chunked again, they go as chunks)."""
        if not small:
            return set()
        extra: set[str] = set()
        self.progress.start("upload", sum(snap.stamp.size for snap in small))
        try:
            while True:
                try:
                    self.uploader.upload_blobs(small)
                    return extra
                except FileChanged as changed:
                    extra |= self._rechunk(changed.path)
                    small = [snap for snap in small if snap.path != changed.path]
        finally:
            self.progress.finish()

    def _chunk_group(self, members: list[str]) -> None:
        """Chunk one file of identical ones; the others reuse its chunks."""
        pending = list(members)
        while pending:
            snap = self._snapshot(pending[0])
            if snap is None:
                pending.pop(0)
                continue
            same = [p for p in pending if p == snap.path or self.entries[p].sha256 == snap.sha256]
            for path in same:
                self.chunked[path] = snap
            pending = [p for p in pending if p not in same]

    def _snapshot(self, path: str, *, fresh: bool = False) -> FileChunks | None:
        """The file's chunks (from the cache unless ``fresh``); None when given up on."""
        location = self.files[path]
        snap = None if fresh else self._cached_snapshot(path, location)
        if snap is None:
            try:
                snap = chunk_file(path, location)
            except (OSError, FileChanged) as exc:
                self._drop(path, f"cannot read it ({exc})")
                return None
            self.result.bytes_hashed += snap.stamp.size
            self.cache.store(path, snap.stamp, snap.sha256, snap.chunks)
        self.progress.advance(snap.stamp.size)
        entry = self.entries[path]
        self.entries[path] = replace(
            entry, mode=snap.mode, mtime_ns=snap.stamp.mtime_ns, sha256=snap.sha256,
            size=snap.stamp.size,
        )
        self.locator.add(snap)
        return snap

    def _cached_snapshot(self, path: str, location: Path) -> FileChunks | None:
        try:
            st = location.lstat()
        except OSError:
            return None
        cached = self.cache.lookup(path, FileStamp.of(st))
        if cached is None or cached.chunks is None:
            return None
        if cached.sha256 != self.entries[path].sha256:
            return None
        stamp, mode = FileStamp.of(st), st.st_mode & 0o7777
        return FileChunks(path, location, stamp, mode, cached.sha256, cached.chunks)

    def _upload(self, digests: set[str]) -> None:
        pending = set(digests)
        self.uploader.sent -= pending  # the site says it lacks them, whatever we sent
        self.progress.start("upload", self.uploader.total_bytes(pending))
        while True:
            try:
                self.uploader.upload(pending)
                break
            except FileChanged as changed:
                pending |= self._rechunk(changed.path)
        self.progress.finish()

    def _rechunk(self, changed: str) -> set[str]:
        """A file changed after it was chunked: chunk every path that relied on it again."""
        self.locator.forget(changed)
        affected = [p for p, snap in self.chunked.items() if snap.path == changed]
        for path in affected:
            del self.chunked[path]
            self.attempts[path] += 1
            if self.attempts[path] > CHANGE_ATTEMPTS:
                self._drop(path, "it kept changing while it was read")
            elif (snap := self._snapshot(path, fresh=True)) is not None:
                self.chunked[path] = snap
        digests = {r.digest for p in affected if p in self.chunked for r in self.chunked[p].chunks}
        return set(self.client.missing(self.repo, chunks=sorted(digests)).chunks)

    def _drop(self, path: str, reason: str) -> None:
        self.dropped.add(path)
        self.chunked.pop(path, None)
        self.result.warnings.append(f"{path}: not pushed, {reason}")

    def _commit(
        self, batch: Sequence[Change], base: int, message: str
    ) -> tuple[CommitResult, list[Change]] | None:
        """Commit one batch; upload what the site says it lacks and repeat the same commit."""
        commit_id = str(uuid.uuid4())
        self.progress.start("commit", len(batch))
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            resolved = self._resolve(batch)
            if not resolved:
                return None
            try:
                result = self.client.commit(
                    self.repo, resolved, message=message, commit_id=commit_id, base_rev=base
                )
            except MissingData as err:
                if attempt == COMMIT_ATTEMPTS or not self._supply(err, resolved):
                    raise
                continue
            self.progress.advance(len(batch))
            self.progress.finish()
            return result, resolved
        raise AssertionError("unreachable")  # pragma: no cover

    def _resolve(self, batch: Sequence[Change]) -> list[Change]:
        """The batch as it is now: fresh file entries, chunks attached, dropped files out."""
        out = []
        for change in batch:
            if not _is_file_put(change):
                out.append(change)
            elif change.path not in self.dropped:
                entry = self.entries[change.path]
                snap = self.chunked.get(change.path)
                usable = snap is not None and snap.sha256 == entry.sha256
                chunks = snap.chunk_pairs() if snap is not None and usable else ()
                out.append(Change("put", change.path, entry, chunks))
        return out

    def _supply(self, err: MissingData, resolved: Sequence[Change]) -> bool:
        """Upload what a ``missing_data`` answer names; False when we cannot.

        The site names chunks (``chunks``), or files (``paths``) and blobs (``missing``)
        it lacks; for the latter, ask again which blobs of this batch it lacks.
        """
        details = err.details
        digests = {str(d) for d in details.get("chunks") or () if self.locator.knows(str(d))}
        names_files = bool(details.get("paths") or details.get("missing"))
        lacking = self._lacking_blobs(resolved) if names_files else []
        if not digests and not lacking:
            return False
        self._upload(digests | self._chunk_paths(lacking))
        return True

    def _count(self, changes: Sequence[Change], remote: Mapping[str, Entry]) -> None:
        for change in changes:
            if change.op == "delete":
                self.result.deleted += 1
            elif change.path in remote:
                self.result.changed += 1
            else:
                self.result.added += 1


def _is_file_put(change: Change) -> bool:
    return change.op == "put" and change.entry is not None and change.entry.kind is Kind.FILE
