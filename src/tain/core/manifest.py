"""Entries, changes and the commit manifest: the values a push is made of.

A repository state is a set of ``Entry`` values, one per path. A push sends a list of
``Change`` values (put or delete); the site turns it into the next revision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tain.core.digests import is_digest
from tain.core.paths import ancestors, check_symlink_target, normalize_path
from tain.errors import InvalidRequest

MAX_MODE = 0o7777


class Kind(StrEnum):
    FILE = "file"
    SYMLINK = "symlink"
    DIR = "dir"


@dataclass(frozen=True, slots=True)
class Entry:
    """One path in a repository state. ``sha256``/``size`` only for files,
    ``target`` only for symlinks."""

    path: str
    kind: Kind
    mode: int = 0o644
    mtime_ns: int = 0
    sha256: str | None = None
    size: int = 0
    target: str | None = None

    def same_content(self, other: Entry) -> bool:
        """True when a client need not send anything to turn ``other`` into ``self``.

        A directory's mtime changes with every entry added to it; it is not content.
        """
        if self.kind is Kind.DIR:
            return other.kind is Kind.DIR and self.mode == other.mode
        return (
            self.kind == other.kind
            and self.sha256 == other.sha256
            and self.target == other.target
            and self.mode == other.mode
            and self.mtime_ns == other.mtime_ns
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path, "kind": self.kind.value, "mode": self.mode,
            "mtime_ns": self.mtime_ns,
        }
        if self.kind is Kind.FILE:
            out["sha256"] = self.sha256
            out["size"] = self.size
        if self.kind is Kind.SYMLINK:
            out["target"] = self.target
        return out


@dataclass(frozen=True, slots=True)
class Change:
    """``op`` is "put" (with ``entry``) or "delete" (of ``path`` and all below it).

    ``chunks`` lists (BLAKE3, length) of a put file, in order, so the site can
    rebuild a blob it lacks from chunks; empty when the site already has the blob.
    """

    op: str
    path: str
    entry: Entry | None = None
    chunks: tuple[tuple[str, int], ...] = field(default_factory=tuple)


def entry_from_json(raw: Mapping[str, Any]) -> Entry:
    """Parse and validate one entry from a request body."""
    path = normalize_path(_field(raw, "path", str))
    try:
        kind = Kind(_field(raw, "kind", str))
    except ValueError as exc:
        raise InvalidRequest(f"{path}: kind must be file, symlink or dir") from exc
    mode = _int(raw.get("mode", 0o755 if kind is Kind.DIR else 0o644), f"{path}: mode")
    if not 0 <= mode <= MAX_MODE:
        raise InvalidRequest(f"{path}: mode {mode:o} is out of range")
    mtime_ns = _int(raw.get("mtime_ns", 0), f"{path}: mtime_ns")
    if kind is Kind.FILE:
        sha = _field(raw, "sha256", str)
        if not is_digest(sha):
            raise InvalidRequest(f"{path}: sha256 must be 64 lowercase hex digits")
        size = _int(_field(raw, "size", int), f"{path}: size")
        if size < 0:
            raise InvalidRequest(f"{path}: size is negative")
        return Entry(path, kind, mode, mtime_ns, sha, size)
    if kind is Kind.SYMLINK:
        target = check_symlink_target(_field(raw, "target", str), path)
        return Entry(path, kind, mode, mtime_ns, target=target)
    return Entry(path, kind, mode, mtime_ns)


def change_from_json(raw: Mapping[str, Any]) -> Change:
    op = raw.get("op")
    if op == "delete":
        return Change("delete", normalize_path(_field(raw, "path", str)))
    if op != "put":
        raise InvalidRequest(f"change op must be 'put' or 'delete', not {op!r}")
    entry = entry_from_json(raw)
    chunks = tuple(_chunk(c, entry.path) for c in raw.get("chunks") or ())
    if chunks and sum(length for _, length in chunks) != entry.size:
        raise InvalidRequest(f"{entry.path}: chunk lengths do not add up to size")
    return Change("put", entry.path, entry, chunks)


def change_to_json(change: Change) -> dict[str, Any]:
    if change.op == "delete" or change.entry is None:
        return {"op": "delete", "path": change.path}
    out = {"op": "put", **change.entry.to_json()}
    if change.chunks:
        out["chunks"] = [list(c) for c in change.chunks]
    return out


def check_changes(changes: Iterable[Change]) -> list[Change]:
    """Reject a change list that names one path twice (the result would be ambiguous)."""
    seen: set[str] = set()
    out = []
    for change in changes:
        if change.path in seen:
            raise InvalidRequest(f"{change.path}: named twice in one commit")
        seen.add(change.path)
        out.append(change)
    not_dirs = {
        c.path for c in out if c.entry is not None and c.entry.kind is not Kind.DIR
    }
    for change in out:
        if change.op == "put" and any(a in not_dirs for a in ancestors(change.path)):
            raise InvalidRequest(f"{change.path}: a parent is put as a file in the same commit")
    return out


def plan_changes(local: Mapping[str, Entry], remote: Mapping[str, Entry]) -> list[Change]:
    """The changes that turn the ``remote`` state into the ``local`` one.

    Deletes of a directory cover everything below it, so only the topmost vanished
    path is deleted. Puts are ordered parents first.
    """
    deletes = [p for p in sorted(remote) if p not in local or local[p].kind != remote[p].kind]
    deleted = set(deletes)
    top_deletes = [p for p in deletes if not any(a in deleted for a in ancestors(p))]
    changes = [Change("delete", p) for p in top_deletes]
    for p in sorted(local):
        entry = local[p]
        old = remote.get(p)
        if old is None or old.kind != entry.kind or not entry.same_content(old):
            changes.append(Change("put", p, entry))
    return changes


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON (sorted keys, no spaces, UTF-8): the bytes we hash and sign."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _field(raw: Mapping[str, Any], key: str, kind: type) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidRequest(f"field {key!r} must be a {kind.__name__}")
    return value


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"{what} must be an integer")
    return value


def _chunk(raw: Any, path: str) -> tuple[str, int]:
    if (
        not isinstance(raw, list | tuple) or len(raw) != 2 or not isinstance(raw[0], str)
        or not is_digest(raw[0]) or not isinstance(raw[1], int) or raw[1] <= 0
    ):
        raise InvalidRequest(f"{path}: each chunk must be [blake3-hex, length > 0]")
    return raw[0], raw[1]
