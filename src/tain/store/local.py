"""Blobs as files on local disks, each blob kept on ``copies`` of the data directories.

Layout inside every data directory (one per disk)::

    blobs/ab/<sha256>      whole blobs, mode 0444 (published trees hard-link to them);
                           one fan-out level: 256 directories, made once, not per blob
    chunks/ab/<blake3>     staged upload chunks (first data directory only)
    tmp/                   temp files; anything left here after a crash is garbage
    quarantine/<sha256>.<inode>   replaced bad copies that other names still link to

Which directories hold a blob follows from its name by rendezvous hashing, so adding
a directory moves few blobs. A directory that is unavailable (a pulled disk) is passed
over for the next one in the ranking, so writes and repairs keep ``copies`` copies
while it is gone. Reads look in every directory, so blobs placed under an older
directory list, or on a fallback directory, are found.

A file appears under its final name only once it is complete and fsynced: it is
written to ``tmp/``, fsynced, then hard-linked (or renamed, to replace a bad copy) into
place and the directory is fsynced. A crash leaves at most temp files, which
``clean_tmp`` removes at startup.

A read that skips a corrupt or unreadable copy rewrites it from the good copy it
found. ``check_copies`` and ``repair`` (the scrub capability, ``tain.store.scrub``) read
every copy and bring a blob back to ``copies`` good copies.

A commit that fails part way may leave the blob on fewer than ``copies`` directories.
Those copies are whole and verified, so they are kept (another writer may already rely
on them); committing the same bytes again, or a scrub, adds the missing copies.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import logging
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from tain.config import StoreConfig
from tain.core.digests import blake3_hex, is_digest
from tain.errors import DigestMismatch, IntegrityError, NotFound, StorageError, UsageError
from tain.store.base import AbortOnExit
from tain.store.durable import fsync_dir
from tain.store.local_group import LocalBlobGroup
from tain.store.scrub import (
    BlobCheck,
    CopyCheck,
    CopyState,
    OnRead,
    QuarantinedCopy,
    RepairResult,
    hash_file,
)

log = logging.getLogger("tain.store")

_HEAL_ERRORS = (IntegrityError, StorageError, NotFound, OSError)

BLOB_MODE = 0o444
IO_BUFFER = 1024 * 1024
VERIFIED_CACHE_SIZE = 100_000
_FANOUT = re.compile(r"^[0-9a-f]{2}$")

StatKey = tuple[str, int, int, int, int]
_TEMP_TOKEN = secrets.token_hex(4)
_TEMP_COUNTER = itertools.count()


class LocalStore:
    """The ``BlobStore`` contract over one or more local data directories."""

    def __init__(self, data_dirs: Sequence[Path], copies: int = 1) -> None:
        dirs = tuple(Path(d) for d in data_dirs)
        _validate(dirs, copies)
        self.data_dirs = dirs
        self.copies = copies
        self._verified = _VerifiedCache(VERIFIED_CACHE_SIZE)
        self._next_temp_dir = itertools.count()
        for root in dirs:
            _prepare(root)

    @classmethod
    def from_config(cls, config: StoreConfig) -> LocalStore:
        return cls(config.data_dirs, config.copies)

    # -- blobs -------------------------------------------------------------------------

    def new_blob(self) -> LocalBlobWriter:
        root, fd, path = self._open_blob_temp()
        return LocalBlobWriter(self, root, fd, path)

    def blob_group(self) -> LocalBlobGroup:
        return LocalBlobGroup(self)

    def open(self, sha256: str) -> BinaryIO:
        f, _ = self._open_verified(sha256)
        return f

    def local_path(self, sha256: str) -> Path | None:
        """A copy whose bytes hash to ``sha256``: one stat when that copy was verified
        already (publishing links thousands of fresh blobs), else opened and checked."""
        if is_digest(sha256):
            for root in self._ranked(sha256):
                name = _blob_name(root, sha256)  # a str: no Path to parse
                try:
                    if self._verified.contains(_stat_key(name, os.stat(name))):
                        return Path(name)
                except OSError:
                    continue
        f, path = self._open_verified(sha256)
        f.close()
        return path

    def size(self, sha256: str) -> int:
        sizes = {st.st_size for st in self._stat_copies(sha256)}
        if not sizes:
            raise NotFound(f"no blob {sha256}")
        if len(sizes) == 1:
            return sizes.pop()
        # Copies disagree, so at least one is corrupt: ask a verified one.
        f, _ = self._open_verified(sha256)
        with f:
            return os.fstat(f.fileno()).st_size

    def has_blobs(self, shas: Iterable[str]) -> set[str]:
        """Blobs with at least one stored copy (not verified: that is ``open``'s job)."""
        return {sha for sha in set(shas) if any(True for _ in self._stat_copies(sha))}

    def delete(self, sha256: str) -> None:
        if not is_digest(sha256):
            return
        for root in self.data_dirs:
            try:
                _blob_path(root, sha256).unlink(missing_ok=True)
            except NotADirectoryError:
                continue
            except OSError as exc:
                raise _storage_error("delete a blob", root, exc) from exc

    def iter_blobs(self) -> Iterator[str]:
        """Every blob name once, sorted; memory use is bounded by one fan-out directory."""
        tops = [root / "blobs" for root in self.data_dirs]
        for ab in _union_listdir(tops, _FANOUT.match):
            yield from _union_listdir([top / ab for top in tops], _blob_name_in(ab))

    # -- chunks ------------------------------------------------------------------------

    def put_chunk(self, digest: str, data: bytes) -> None:
        actual = blake3_hex(data)
        if actual != digest:
            raise DigestMismatch(
                f"chunk bytes hash to {actual}, not {digest}", expected=digest, actual=actual
            )
        root = self.data_dirs[0]
        tmp: str | None = None
        try:
            parent = _ensure_dirs(root, "chunks", digest[:2])
            fd, tmp = _new_temp(root, "chunk-")
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            # Replacing is safe (the temp is complete) and heals a corrupt staged copy.
            # No fsync: a staged chunk is a cache. One lost or torn by a power cut
            # fails its BLAKE3 check on use, the commit answers missing_data, and the
            # client sends it again; blobs, which are acknowledged data, are fsynced.
            os.replace(tmp, parent / digest)
            tmp = None
        except OSError as exc:
            raise _storage_error("stage a chunk", root, exc) from exc
        finally:
            if tmp is not None:
                _unlink_quietly(tmp)

    def get_chunk(self, digest: str) -> bytes:
        if not is_digest(digest):
            raise NotFound(f"no staged chunk {digest!r}")
        root = self.data_dirs[0]
        path = _chunk_path(root, digest)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"no staged chunk {digest}") from exc
        except OSError as exc:
            raise _storage_error("read a chunk", root, exc) from exc
        if blake3_hex(data) != digest:
            # Dropped so that has_chunks stops reporting it and the client sends it again.
            log.error("corrupt staged chunk %s: removed", path)
            _unlink_quietly(path)
            raise IntegrityError(f"staged chunk {digest} is corrupt", hint="upload it again")
        return data

    def _adopt_staged(self, digest: str, sha256: str, size: int) -> str | None:
        """A temp name (hard link) for the staged chunk ``digest`` when its bytes are
        exactly blob ``sha256`` (both digests checked now), made read-only like a blob;
        None when it is absent or does not match. The caller fsyncs and places it."""
        root = self.data_dirs[0]
        if not is_digest(digest):
            return None
        try:
            temp = _link_to_temp(_chunk_path(root, digest), root, "adopt-")
        except OSError:
            return None
        try:
            with open(temp, "rb") as f:
                data = f.read(size + 1)
                good = (len(data) == size and blake3_hex(data) == digest
                        and hashlib.sha256(data).hexdigest() == sha256)
                if good:
                    os.fchmod(f.fileno(), BLOB_MODE)
        except OSError:
            good = False
        if not good:
            _unlink_quietly(temp)
            return None
        return temp

    def has_chunks(self, digests: Iterable[str]) -> set[str]:
        root = self.data_dirs[0]
        return {d for d in set(digests) if is_digest(d) and _exists(_chunk_path(root, d))}

    def prune_chunks(self, older_than: float) -> int:
        top = self.data_dirs[0] / "chunks"
        files = (
            top / ab / name
            for ab in _union_listdir([top], _FANOUT.match)
            for name in _union_listdir([top / ab], is_digest)
        )
        return _remove_older(files, older_than)

    # -- maintenance -------------------------------------------------------------------

    def clean_tmp(self, older_than: float) -> int:
        """Remove temp files last modified before UNIX time ``older_than``; called at
        startup. Pass a time in the past if other processes may be writing now."""
        files = (root / "tmp" / name for root in self.data_dirs for name in _listdir(root / "tmp"))
        return _remove_older(files, older_than)

    def disk_usage(self) -> list[dict[str, object]]:
        """Each data dir: whether it is available, and its file system's size and free space."""
        dirs: list[dict[str, object]] = []
        for root in self.data_dirs:
            entry: dict[str, object] = {"path": str(root), "available": root.is_dir()}
            try:
                st = os.statvfs(root)
            except OSError as exc:
                entry["error"] = exc.strerror or str(exc)
            else:
                entry["total_bytes"] = st.f_blocks * st.f_frsize
                entry["free_bytes"] = st.f_bavail * st.f_frsize
                entry["used_bytes"] = (st.f_blocks - st.f_bfree) * st.f_frsize
            dirs.append(entry)
        return dirs

    # -- scrub capability (tain.store.scrub) ---------------------------------------------

    def check_copies(self, sha256: str, on_read: OnRead | None = None) -> BlobCheck:
        """Read and hash every copy, ignoring earlier verifications (see ``scrub``)."""
        if not is_digest(sha256):
            raise NotFound(f"no blob {sha256!r}")
        wanted = set(self._placement(sha256))
        checks: list[CopyCheck] = []
        read = 0
        for root in self._ranked(sha256):
            path = _blob_path(root, sha256)
            state, detail, n = self._check_copy(path, sha256, on_read)
            read += n
            if state is CopyState.MISSING and root not in wanted:
                continue
            checks.append(CopyCheck(str(path), state, root in wanted, detail))
        return BlobCheck(sha256, tuple(checks), self.copies, read)

    def repair(self, check: BlobCheck, source: BinaryIO | None = None) -> RepairResult:
        """Rewrite the wanted copies that are not good, then drop bad and surplus copies
        elsewhere (see ``tain.store.scrub``)."""
        sha = check.sha256
        good = [Path(c.location) for c in check.copies if c.state is CopyState.OK]
        if not good and source is None:
            if any(c.state is not CopyState.MISSING for c in check.copies):
                raise IntegrityError(f"blob {sha} has no good copy to repair from", sha256=sha)
            raise NotFound(f"no blob {sha}")
        targets = self._placement(sha)
        if not targets:
            raise StorageError("no data dir is available", sha256=sha)
        written: list[str] = []
        for root in targets:
            final = _blob_path(root, sha)
            if final in good:
                continue
            self._rewrite_copy(root, sha, good, source)
            good.insert(0, final)  # a fresh, verified copy: the best source for the next
            written.append(str(final))
        removed = self._drop_strays(check, targets)
        if len(targets) < self.copies:
            raise StorageError(
                f"blob {sha}: only {len(targets)} of the {self.copies} data dirs its copies "
                "need are available",
                sha256=sha,
            )
        return RepairResult(tuple(written), tuple(removed))

    def quarantined(self) -> Iterator[QuarantinedCopy]:
        """Replaced bad copies still linked from elsewhere (a published tree)."""
        for root in self.data_dirs:
            top = root / "quarantine"
            for name in sorted(_listdir(top)):
                sha = name.partition(".")[0]
                if is_digest(sha):
                    yield QuarantinedCopy(sha, str(top / name))

    def release(self, copy: QuarantinedCopy) -> None:
        _unlink_quietly(Path(copy.location))

    # -- internals ---------------------------------------------------------------------

    def _ranked(self, sha256: str) -> list[Path]:
        """All data dirs, best first by rendezvous hashing; the first ``copies`` hold it."""

        if len(self.data_dirs) == 1:
            return list(self.data_dirs)

        def score(root: Path) -> bytes:
            return hashlib.sha256(f"{root}\0{sha256}".encode()).digest()

        return sorted(self.data_dirs, key=score, reverse=True)

    def _placement(self, sha256: str) -> list[Path]:
        """The dirs that should hold the blob now: the best ``copies`` available ones."""
        return [root for root in self._ranked(sha256) if root.is_dir()][: self.copies]

    def _open_blob_temp(self, mode: int = 0o600) -> tuple[Path, int, str]:
        """A temp file for a new blob, rotating over the data dirs to spread the load."""
        start = next(self._next_temp_dir)
        failures: list[str] = []
        for i in range(len(self.data_dirs)):
            root = self.data_dirs[(start + i) % len(self.data_dirs)]
            try:
                fd, path = _new_temp(root, "blob-", mode)
            except OSError as exc:
                failures.append(f"{root}: {exc.strerror or exc}")
                continue
            return root, fd, path
        raise StorageError("cannot create a temp file in any data dir: " + "; ".join(failures))

    def _publish(
        self, sha256: str, src: str | Path, src_root: Path, *, sync_dirs: bool = True
    ) -> list[Path]:
        """Put the complete, fsynced temp file ``src`` in place in ``copies`` dirs: the
        best ones by rank, passing over a dir that is unavailable or fails. Returns the
        directories it linked into; with ``sync_dirs`` False the caller fsyncs them."""
        placed: list[Path] = []
        first_error: StorageError | None = None
        for root in self._ranked(sha256):
            if len(placed) == self.copies:
                return placed
            if not root.is_dir():
                log.warning("data dir %s is unavailable: blob %s goes elsewhere", root, sha256)
                continue
            try:
                placed.append(self._place(sha256, src, root, own=root == src_root,
                                          sync_dir=sync_dirs))
            except StorageError as exc:
                log.warning("%s", exc)
                first_error = first_error or exc
                continue
        if len(placed) < self.copies:
            raise first_error or StorageError(
                f"blob {sha256}: only {len(placed)} of {self.copies} data dirs are available"
            )
        return placed

    def _place(
        self, sha256: str, src: str | Path, root: Path, *, own: bool, sync_dir: bool = True
    ) -> Path:
        final = _blob_path(root, sha256)
        tmp: str | None = None
        try:
            if not own:
                tmp = _copy_to_temp(src, root, sha256)
            try:
                self._link_into_place(tmp or src, final, sha256)
            except FileNotFoundError:  # the first blob of its fan-out directory
                _ensure_dirs(root, "blobs", sha256[:2])
                self._link_into_place(tmp or src, final, sha256)
            if sync_dir:
                fsync_dir(final.parent)
            return final.parent
        except OSError as exc:
            raise _storage_error("store a blob", root, exc) from exc
        finally:
            if tmp is not None:
                _unlink_quietly(tmp)

    def _link_into_place(self, source: str | Path, final: Path, sha256: str) -> None:
        try:
            os.link(source, final)
        except FileExistsError:
            if self._is_good_copy(final, sha256):
                return
            log.warning("replacing corrupt blob copy %s", final)
            alias = f"{source}.r"  # the temp itself stays usable
            os.link(source, alias)
            try:
                _quarantine(final, sha256)
                os.replace(alias, final)
            finally:
                _unlink_quietly(alias)

    def _rewrite_copy(
        self, root: Path, sha256: str, good: list[Path], source: BinaryIO | None
    ) -> None:
        """Write the copy in ``root`` anew from the first good copy that really is good,
        else from ``source``; a bad copy there is quarantined and atomically replaced."""
        final = _blob_path(root, sha256)
        tmp: str | None = None
        try:
            _ensure_dirs(root, "blobs", sha256[:2])
            tmp = self._good_temp(root, sha256, good, source)
            _quarantine(final, sha256)
            os.replace(tmp, final)
            tmp = None
            fsync_dir(final.parent)
        except OSError as exc:
            raise _storage_error("repair a blob", root, exc) from exc
        finally:
            if tmp is not None:
                _unlink_quietly(tmp)
        log.info("wrote blob copy %s", final)

    def _good_temp(
        self, root: Path, sha256: str, good: list[Path], source: BinaryIO | None
    ) -> str:
        for path in good:
            try:
                return _copy_to_temp(path, root, sha256)
            except IntegrityError:
                log.error("blob copy %s changed or went bad while it was copied", path)
            except FileNotFoundError:
                continue
        if source is None:
            raise IntegrityError(f"blob {sha256} has no good copy to repair from",
                                 sha256=sha256)
        return _copy_to_temp(source, root, sha256)

    def _drop_strays(self, check: BlobCheck, targets: list[Path]) -> list[str]:
        """Remove copies outside ``targets``: bad ones, and good ones beyond ``copies``
        (left on a fallback dir while a wanted dir was unavailable)."""
        wanted = {str(_blob_path(root, check.sha256)) for root in targets}
        removed: list[str] = []
        for copy in check.copies:
            if copy.location in wanted or copy.state is CopyState.MISSING:
                continue
            path = Path(copy.location)
            try:
                if copy.state is not CopyState.OK:
                    _quarantine(path, check.sha256)
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot remove blob copy %s: %s", path, exc.strerror or exc)
                continue
            removed.append(copy.location)
        return removed

    def _check_copy(
        self, path: Path, sha256: str, on_read: OnRead | None
    ) -> tuple[CopyState, str, int]:
        """Hash one copy in full; returns its state, why, and the bytes read."""
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below
        except (FileNotFoundError, NotADirectoryError):
            return CopyState.MISSING, "", 0
        except OSError as exc:
            return CopyState.UNREADABLE, exc.strerror or str(exc), 0
        with f:
            key = _stat_key(path, os.fstat(f.fileno()))
            _advise_sequential(f.fileno())
            try:
                digest, size = hash_file(f, on_read)
            except OSError as exc:
                self._verified.discard(key)
                return CopyState.UNREADABLE, exc.strerror or str(exc), 0
            if digest != sha256:
                self._verified.discard(key)
                log.error("corrupt blob copy %s: its bytes do not hash to its name", path)
                return CopyState.CORRUPT, f"bytes hash to {digest}", size
            if _stat_key(path, os.fstat(f.fileno())) == key:
                self._verified.add(key)
            return CopyState.OK, "", size

    def _heal(self, sha256: str, good: Path, bad: list[Path]) -> None:
        """Rewrite the copies a read skipped from the good one it found; never raises."""
        for path in bad:
            root = path.parents[2]
            try:
                self._rewrite_copy(root, sha256, [good], None)
            except _HEAL_ERRORS as exc:
                log.error("cannot repair blob copy %s: %s", path, exc)
            else:
                log.warning("repaired blob copy %s from %s", path, good)

    def _remember_verified(self, sha256: str, dirs: Iterable[Path]) -> None:
        """Note the copies just placed in ``dirs`` as verified: their bytes were hashed
        on their way in, so the first read (publishing links them at once) need not hash
        them again."""
        for parent in dirs:
            final = f"{parent}/{sha256}"  # as _blob_name spells it: the key's first field
            with contextlib.suppress(OSError):
                self._verified.add(_stat_key(final, os.stat(final)))

    def _is_good_copy(self, path: Path, sha256: str) -> bool:
        try:
            f = self._open_copy(path, sha256)
        except OSError:
            return False
        if f is None:
            return False
        f.close()
        return True

    def _stat_copies(self, sha256: str) -> Iterator[os.stat_result]:
        if not is_digest(sha256):
            return
        for root in self.data_dirs:
            try:
                yield _blob_path(root, sha256).stat()
            except OSError:
                continue

    def _open_verified(self, sha256: str) -> tuple[BinaryIO, Path]:
        """The first copy whose bytes hash to ``sha256``, opened at offset 0."""
        if not is_digest(sha256):
            raise NotFound(f"no blob {sha256!r}")
        corrupt = unreadable = 0
        bad: list[Path] = []
        for root in self._ranked(sha256):
            path = _blob_path(root, sha256)
            try:
                f = self._open_copy(path, sha256)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                log.warning("cannot read blob copy %s: %s", path, exc.strerror or exc)
                unreadable += 1
                bad.append(path)
                continue
            if f is not None:
                if bad:
                    self._heal(sha256, path, bad)
                return f, path
            log.error("corrupt blob copy %s: its bytes do not hash to its name", path)
            corrupt += 1
            bad.append(path)
        if corrupt:
            raise IntegrityError(
                f"blob {sha256} has no good copy ({corrupt} corrupt, {unreadable} unreadable)",
                sha256=sha256,
            )
        if unreadable:
            raise StorageError(f"blob {sha256}: no copy is readable", sha256=sha256)
        raise NotFound(f"no blob {sha256}")

    def _open_copy(self, path: Path, sha256: str) -> BinaryIO | None:
        """The copy at ``path`` opened at offset 0 if its bytes hash to ``sha256``."""
        f = open(path, "rb")  # noqa: SIM115 - handed to the caller
        try:
            good = self._verify(f, path, sha256)
        except BaseException:
            f.close()
            raise
        if not good:
            f.close()
            return None
        f.seek(0)
        return f

    def _verify(self, f: io.BufferedReader, path: Path, sha256: str) -> bool:
        """Hash the whole file unless this exact file version was already checked."""
        key = _stat_key(path, os.fstat(f.fileno()))
        if self._verified.contains(key):
            return True
        if hashlib.file_digest(f, "sha256").hexdigest() != sha256:
            return False
        if _stat_key(path, os.fstat(f.fileno())) == key:
            self._verified.add(key)
        return True


class LocalBlobWriter(AbortOnExit):
    """Streams a blob into a temp file, hashing on the way; ``commit`` publishes it."""

    def __init__(
        self, store: LocalStore, root: Path, fd: int, path: str,
        group: LocalBlobGroup | None = None,
    ) -> None:
        self._store = store
        self._group = group
        self._root = root
        self._fd: int | None = fd
        self._path: str | None = path
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        self._live_fd()
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._size += view.nbytes
        self._buf += view
        if len(self._buf) >= IO_BUFFER:
            self._flush()

    def commit(self, expected_sha256: str | None = None) -> str:
        fd, path = self._live_fd(), self._path
        assert path is not None
        self._flush()
        sha = self._hash.hexdigest()
        if expected_sha256 is not None and expected_sha256 != sha:
            self.abort()
            raise DigestMismatch(
                f"blob bytes hash to {sha}, not {expected_sha256}",
                expected=expected_sha256,
                actual=sha,
            )
        try:
            os.fchmod(fd, BLOB_MODE)
            if self._group is not None:  # the group fsyncs and publishes it later
                self._fd = self._path = None
                os.close(fd)
                self._group.add(sha, path, self._root)
                return sha
            os.fsync(fd)
            self._fd = None
            os.close(fd)
            placed = self._store._publish(sha, path, self._root)
        except OSError as exc:
            raise _storage_error("write a blob", self._root, exc) from exc
        finally:
            self.abort()
        self._store._remember_verified(sha, placed)
        return sha

    def abort(self) -> None:
        """Discard the bytes; safe to call more than once and after ``commit``."""
        fd, self._fd = self._fd, None
        path, self._path = self._path, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError as exc:
                log.warning("cannot close temp file %s: %s", path, exc.strerror)
        if path is not None:
            _unlink_quietly(path)

    def _live_fd(self) -> int:
        if self._fd is None:
            raise ValueError("blob writer is closed")
        return self._fd

    def _flush(self) -> None:
        data, self._buf = self._buf, bytearray()
        try:
            _write_all(self._live_fd(), data)
        except OSError as exc:
            self.abort()
            raise _storage_error("write a blob", self._root, exc) from exc


class _VerifiedCache:
    """A bounded LRU set of file versions whose bytes were seen to match their name."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[StatKey, None] = OrderedDict()
        self._lock = threading.Lock()

    def contains(self, key: StatKey) -> bool:
        with self._lock:
            if key not in self._keys:
                return False
            self._keys.move_to_end(key)
            return True

    def add(self, key: StatKey) -> None:
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self._capacity:
                self._keys.popitem(last=False)

    def discard(self, key: StatKey) -> None:
        with self._lock:
            self._keys.pop(key, None)


def _validate(dirs: tuple[Path, ...], copies: int) -> None:
    if not dirs:
        raise UsageError("the blob store needs at least one data dir")
    if not 1 <= copies <= len(dirs):
        raise UsageError(f"copies = {copies} needs between 1 and {len(dirs)} data dirs")
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise UsageError("the same data dir is listed twice")


def _prepare(root: Path) -> None:
    """Create the data dir layout; a missing disk is logged, reads use the other copies."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("blobs", "chunks", "tmp"):
            (root / sub).mkdir(exist_ok=True)
        for sub in ("blobs", "chunks"):
            _make_fanout(root / sub)
    except OSError as exc:
        log.warning("data dir %s is unavailable: %s", root, exc.strerror or exc)


def _make_fanout(top: Path) -> None:
    """The 256 fan-out dirs, made up front: the first push of many files then does not
    pay a mkdir and two directory fsyncs for each of them on its way."""
    missing = [top / f"{i:02x}" for i in range(256) if not (top / f"{i:02x}").is_dir()]
    for path in missing:
        path.mkdir(exist_ok=True)
    if missing:
        fsync_dir(top)


def _blob_name(root: Path, sha256: str) -> str:
    """Where a blob's copy lives in ``root``, spelled the one way the verified cache's
    keys are spelled (``_remember_verified``, ``local_path``)."""
    return f"{root}/blobs/{sha256[:2]}/{sha256}"


def _blob_path(root: Path, sha256: str) -> Path:
    return Path(_blob_name(root, sha256))  # one parse, not three joins


def _chunk_path(root: Path, digest: str) -> Path:
    return Path(f"{root}/chunks/{digest[:2]}/{digest}")


def _blob_name_in(prefix: str) -> Callable[[str], bool]:
    def keep(name: str) -> bool:
        return is_digest(name) and name.startswith(prefix)

    return keep


def _stat_key(path: Path | str, st: os.stat_result) -> StatKey:
    """What identifies one version of a blob file for the verified cache.

    Not the ctime: adding a hard link changes it, and publishing links every blob into
    the published trees, so a ctime key made the second tree hash every blob again.
    The key is (path, device, inode, size, mtime_ns) instead. A blob file is written
    once under a temp name and is read-only (0444); every replacement (a repair, a
    rewrite of a bad copy, a new upload) arrives by rename, which brings a new inode,
    and a write into the file in place changes its mtime (and usually its size). What
    the key cannot see - bit rot, or someone who writes in place and sets the mtime
    back - the ctime did not catch either (rot changes no stat field); scrubs hash
    every copy in full, whatever the cache says.
    """
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _storage_error(action: str, root: Path, exc: OSError) -> StorageError:
    return StorageError(f"cannot {action} in {root}: {exc.strerror or exc}", dir=str(root))


def _ensure_dirs(root: Path, *parts: str) -> Path:
    """Create ``root/parts...`` but never ``root``: a data dir that vanished while
    running (a pulled disk) is an error, not silently recreated."""
    full = root.joinpath(*parts)
    if os.path.isdir(full):
        return full
    path = root
    for part in parts:
        parent, path = path, path / part
        try:
            path.mkdir()
        except FileExistsError:
            continue
        fsync_dir(parent)
    return path


def _new_temp(root: Path, prefix: str, mode: int = 0o600) -> tuple[int, str]:
    """A new, empty temp file (private unless ``mode`` says otherwise). Names are unique
    per process by a counter (a leftover from an earlier process with the same pid and
    token is skipped), which is cheaper than ``tempfile``'s random names for thousands
    of small blobs."""
    tmp, made = os.path.join(root, "tmp"), False
    while True:
        path = _temp_name(tmp, prefix)  # a str: a Path costs a parse and a format
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            continue
        except FileNotFoundError:  # no tmp yet (made on demand, never the root itself)
            if made:
                raise
            _ensure_dirs(root, "tmp")
            made = True
            continue
        return fd, path


def _temp_name(tmp: Path | str, prefix: str) -> str:
    return f"{tmp}/{prefix}{os.getpid()}-{_TEMP_TOKEN}-{next(_TEMP_COUNTER)}"


def _link_to_temp(source: Path, root: Path, prefix: str) -> str:
    """A new temp name for the file ``source`` names (a hard link, no copy)."""
    tmp = _ensure_dirs(root, "tmp")
    while True:
        path = _temp_name(tmp, prefix)
        try:
            os.link(source, path)
        except FileExistsError:
            continue
        return path


def _copy_to_temp(src: str | Path | BinaryIO, root: Path, sha256: str) -> str:
    """A complete, fsynced, read-only copy of ``src`` (a file, or a readable stream from
    its current position) in ``root/tmp``; ``IntegrityError`` unless it hashes to
    ``sha256``."""
    fd, tmp = _new_temp(root, "blob-")
    try:
        try:
            if isinstance(src, str | Path):
                with open(src, "rb") as f:
                    digest = _copy_into(f, fd)
            else:
                digest = _copy_into(src, fd)
            os.fchmod(fd, BLOB_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
        if digest != sha256:
            raise IntegrityError(
                f"the bytes copied from {src if isinstance(src, str | Path) else 'the source'} "
                f"to {root} hash to {digest}, not {sha256}",
                sha256=sha256,
            )
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _copy_into(f: BinaryIO, fd: int) -> str:
    h = hashlib.sha256()
    while block := f.read(IO_BUFFER):
        h.update(block)
        _write_all(fd, block)
    return h.hexdigest()


def _quarantine(path: Path, sha256: str) -> None:
    """Keep a bad copy that is about to be replaced or removed when other names (hard
    links in a published tree) still point at its bytes, so that they can be found and
    re-pointed; see ``LocalStore.quarantined``."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_nlink < 2:
        return
    top = _ensure_dirs(path.parents[2], "quarantine")
    try:
        os.link(path, top / f"{sha256}.{st.st_ino}")
    except FileExistsError:
        return
    fsync_dir(top)


def _advise_sequential(fd: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except OSError:
        return False
    return True


def _unlink_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc.strerror or exc)


def _listdir(path: Path) -> list[str]:
    """Names in ``path``; a missing dir is empty, an unreadable one is logged and empty."""
    try:
        return [entry.name for entry in path.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        log.warning("cannot list %s: %s", path, exc.strerror or exc)
        return []


def _union_listdir(dirs: Iterable[Path], keep: Callable[[str], object]) -> list[str]:
    """Sorted union of the names in ``dirs`` for which ``keep(name)`` is true."""
    return sorted({name for d in dirs for name in _listdir(d) if keep(name)})


def _remove_older(files: Iterable[Path], older_than: float) -> int:
    """Unlink the files last modified before ``older_than``; errors are logged."""
    removed = 0
    for path in files:
        try:
            if path.stat().st_mtime < older_than:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc.strerror or exc)
    return removed
