"""The scrub capability: what a blob store offers beyond ``BlobStore`` so that a scrub can
check every stored copy of a blob and put bad or missing copies right.

A backend that implements ``ScrubbableStore`` is checked copy by copy; any other backend
is checked through ``BlobStore.open`` (which verifies the bytes) and can only be repaired
by writing the blob again. ``LocalStore`` implements it, and ``Quarantine`` too.

``check_copies(sha256, on_read)``
    Reads every stored copy of the blob in full, bypassing any cache of earlier
    verifications, and returns one ``CopyCheck`` per place a copy is wanted or found:
    ``ok``, ``missing`` (wanted there, absent), ``corrupt`` (the bytes do not hash to the
    name) or ``unreadable`` (an I/O error). ``on_read(n)`` is called after each block of
    ``n`` bytes is read (the scrub's rate limit sleeps in it). A copy found corrupt is
    never again served as good, even if its file metadata did not change.

``repair(check, source)``
    Brings the blob to the wanted number of good copies in the wanted places: writes
    each missing or bad wanted copy from a good copy (or from ``source``, a readable file
    of the blob's bytes, when no good copy is left), each atomically (a temp file,
    fsync, rename, fsync of the directory), and removes bad or surplus copies found
    elsewhere. Every byte written is hashed on the way; if the source does not hash to
    the blob's name nothing is replaced and ``IntegrityError`` is raised. With no good
    copy and no source it raises ``IntegrityError`` (``NotFound`` if no copy exists).

``Quarantine``
    A bad copy that is replaced is kept aside instead of deleted when other names may
    still point at its bytes (hard links in a published tree). ``quarantined()`` lists
    those files; the caller re-points the other names, then ``release(copy)`` deletes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, Protocol, runtime_checkable

READ_BLOCK = 1024 * 1024

OnRead = Callable[[int], None]


class CopyState(StrEnum):
    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class CopyCheck:
    """One place of one blob: ``location`` names it (a file path, an object key);
    ``wanted`` says whether placement puts a copy there."""

    location: str
    state: CopyState
    wanted: bool
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"location": self.location, "state": str(self.state)}
        if self.detail:
            body["detail"] = self.detail
        return body


@dataclass(frozen=True, slots=True)
class BlobCheck:
    sha256: str
    copies: tuple[CopyCheck, ...]
    wanted_copies: int
    bytes_read: int

    @property
    def good(self) -> int:
        return sum(1 for c in self.copies if c.state is CopyState.OK)

    @property
    def bad(self) -> tuple[CopyCheck, ...]:
        """Copies that are not as they should be: missing where wanted, corrupt, unreadable."""
        return tuple(
            c for c in self.copies
            if c.state is not CopyState.OK and (c.wanted or c.state is not CopyState.MISSING)
        )

    @property
    def healthy(self) -> bool:
        return not self.bad and self.good >= self.wanted_copies

    @property
    def lost(self) -> bool:
        """No good copy is left: only another site or a backup can bring it back."""
        return self.good == 0


@dataclass(frozen=True, slots=True)
class RepairResult:
    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QuarantinedCopy:
    sha256: str
    location: str


@runtime_checkable
class ScrubbableStore(Protocol):
    def check_copies(self, sha256: str, on_read: OnRead | None = None) -> BlobCheck: ...

    def repair(self, check: BlobCheck, source: BinaryIO | None = None) -> RepairResult: ...


@runtime_checkable
class Quarantine(Protocol):
    def quarantined(self) -> Iterator[QuarantinedCopy]: ...

    def release(self, copy: QuarantinedCopy) -> None: ...


def hash_file(f: BinaryIO, on_read: OnRead | None = None) -> tuple[str, int]:
    """SHA-256 (hex) and length of everything ``f`` has left to read, block by block."""
    h = hashlib.sha256()
    buf = bytearray(READ_BLOCK)
    view = memoryview(buf)
    total = 0
    while n := f.readinto(view):  # type: ignore[attr-defined]
        h.update(view[:n])
        total += n
        if on_read is not None:
            on_read(n)
    return h.hexdigest(), total
