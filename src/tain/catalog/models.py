"""Values the catalog returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from tain.core.manifest import Entry


class Role(IntEnum):
    """Per-repository roles, ordered: a higher role includes the lower ones."""

    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        from tain.errors import UsageError

        try:
            return cls[text.upper()]
        except KeyError:
            raise UsageError(f"unknown role {text!r}", hint="use read, write or admin") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Repo:
    id: int
    name: str
    public: bool
    description: str
    created_at: float
    head: int
    keep_last: int | None
    keep_days: float | None
    oldest_kept: int

    @property
    def identity(self) -> tuple[int, float]:
        """Tells this repository from an earlier one of its name: one made again reuses
        the name and the revision numbers (and, on SQLite, maybe the id)."""
        return self.id, self.created_at

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "public": self.public, "description": self.description,
            "created_at": self.created_at, "head": self.head, "keep_last": self.keep_last,
            "keep_days": self.keep_days, "oldest_kept": self.oldest_kept,
        }


@dataclass(frozen=True, slots=True)
class Revision:
    repo: str
    number: int
    created_at: float
    author: str
    message: str
    files: int
    bytes: int
    added: int
    modified: int
    deleted: int
    commit_id: str | None
    change_digest: str
    signature: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo, "number": self.number, "created_at": self.created_at,
            "author": self.author, "message": self.message, "files": self.files,
            "bytes": self.bytes, "added": self.added, "modified": self.modified,
            "deleted": self.deleted, "commit_id": self.commit_id,
            "change_digest": self.change_digest, "signature": self.signature,
        }


@dataclass(frozen=True, slots=True)
class Version:
    """One entry row: ``entry`` was live from revision ``rev_from`` up to, not
    including, ``rev_to`` (None while it is live)."""

    entry: Entry
    rev_from: int
    rev_to: int | None

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "rev_from": self.rev_from, "rev_to": self.rev_to}


@dataclass(frozen=True, slots=True)
class DiffItem:
    path: str
    old: Entry | None
    new: Entry | None

    @property
    def status(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "deleted"
        return "modified"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "status": self.status,
            "old": self.old.to_json() if self.old else None,
            "new": self.new.to_json() if self.new else None,
        }


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    is_admin: bool
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "is_admin": self.is_admin, "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    user: str
    name: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "user": self.user, "name": self.name,
            "created_at": self.created_at, "expires_at": self.expires_at,
            "revoked_at": self.revoked_at, "last_used_at": self.last_used_at,
        }


@dataclass(frozen=True, slots=True)
class Grant:
    user: str
    repo: str
    role: Role

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "repo": self.repo, "role": str(self.role)}


@dataclass(frozen=True, slots=True)
class ChunkLocation:
    digest: str
    sha256: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class CommitResult:
    revision: Revision
    created: bool
    changes: tuple[DiffItem, ...] | None = None
    """What a new revision changed, by path, against the one before: each put with the
    entry it replaced, each delete with the entry it removed (a deleted directory
    stands for everything below it). None when the commit made no revision."""
