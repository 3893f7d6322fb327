"""Committing a change list as one new revision, atomically and idempotently.

Cost follows the change: each put closes at most one live row and inserts one; a
delete closes the rows at and below its path (an index range scan); ancestors of a
put are created as directory entries when missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from tain.catalog import schema as t
from tain.catalog.models import CommitResult, DiffItem
from tain.catalog.repos import _repo_row
from tain.catalog.sqlbase import SqlBase
from tain.catalog.tree import below, revision_from_row, row_entry
from tain.core.manifest import Change, Entry, Kind, canonical_json, change_to_json
from tain.core.paths import ancestors, parent_of
from tain.errors import Conflict, MissingData

e = t.entries
_BATCH = 500


@dataclass
class _Tally:
    added: int = 0
    modified: int = 0
    deleted: int = 0
    files: int = 0
    bytes: int = 0
    applied: list[dict[str, Any]] = field(default_factory=list)
    diff: dict[str, DiffItem] = field(default_factory=dict)

    def changed_path(self, path: str, old: Entry | None, new: Entry | None) -> None:
        """One path's change; a path deleted and then put again is one item."""
        before = self.diff.get(path)
        self.diff[path] = DiffItem(path, before.old if before else old, new)

    @property
    def changed(self) -> bool:
        return bool(self.applied)


class CommitCatalog(SqlBase):
    def commit(
        self,
        repo: str,
        changes: Sequence[Change],
        *,
        author: str,
        message: str = "",
        commit_id: str | None = None,
        base_rev: int | None = None,
        sign: Any = None,
    ) -> CommitResult:
        """Apply ``changes`` as revision head+1 in one transaction.

        A repeated ``commit_id`` returns the revision it made the first time. A change
        list that changes nothing returns the head with ``created=False``. A put whose
        blob the catalog does not hold raises ``MissingData`` (nothing is written).
        ``sign(repo, number, change_digest) -> str`` fills the signature slot.
        """
        with self._db.write() as conn:
            row = _repo_row(conn, repo, lock=True)
            if commit_id and (done := _by_commit_id(conn, row.id, commit_id)) is not None:
                return CommitResult(revision_from_row(repo, done), created=False)
            if base_rev is not None and base_rev != row.head:
                raise Conflict(
                    f"{repo} moved on: it is at revision {row.head}, not {base_rev}",
                    hint="re-read the repository and push again",
                )
            _check_blobs(conn, changes)
            number = row.head + 1
            tally = _apply(conn, row.id, number, changes, self._clock())
            if not tally.changed:
                return CommitResult(self._head_revision(conn, repo, row), created=False)
            prev = _prev_revision(conn, row.id, row.head)
            body = canonical_json(tally.applied)
            digest = chained_digest(prev.change_digest if prev else "", body)
            now = self._clock()
            values = dict(
                repo_id=row.id, number=number, created_at=now, author=author,
                message=message, files=(prev.files if prev else 0) + tally.files,
                bytes=(prev.bytes if prev else 0) + tally.bytes, added=tally.added,
                modified=tally.modified, deleted=tally.deleted, commit_id=commit_id,
                change_digest=digest,
                signature=sign(repo, number, digest) if sign else None,
            )
            conn.execute(sa.insert(t.revisions).values(**values))
            conn.execute(sa.insert(t.revision_changes).values(
                repo_id=row.id, number=number, body=body.decode()))
            conn.execute(sa.update(t.repos).where(t.repos.c.id == row.id).values(head=number))
            self._audit(conn, author, "commit", f"{repo}@{number}", message=message,
                        added=tally.added, modified=tally.modified, deleted=tally.deleted)
            rev_row = _by_number(conn, row.id, number)
        return CommitResult(revision_from_row(repo, rev_row), created=True,
                            changes=tuple(tally.diff.values()))

    def _head_revision(self, conn: Connection, repo: str, row: Row[Any]) -> Any:
        prev = _prev_revision(conn, row.id, row.head)
        if prev is None:
            raise Conflict(f"nothing to commit: {repo} is empty and the change list is empty")
        return revision_from_row(repo, prev)


def _apply(
    conn: Connection, repo_id: int, number: int, changes: Sequence[Change], now: float
) -> _Tally:
    """Deletes first, then every put in path order (parents before children), with
    live rows fetched and new rows written in batches: O(k) statements for k changes
    would be correct too, but batches keep a 100,000-file first push fast."""
    tally = _Tally()
    deletes = sorted(c.path for c in changes if c.op == "delete")
    doomed = _live_rows(conn, repo_id, deletes) if deletes else {}
    for path in deletes:
        _delete(conn, repo_id, number, path, tally, doomed.get(path))
    puts = {c.path: c.entry for c in changes if c.op == "put" and c.entry is not None}
    implicit = {a for p in puts for a in ancestors(p)} - puts.keys()
    live = _live_rows(conn, repo_id, puts.keys() | implicit)
    for directory in implicit:
        row = live.get(directory)
        if row is None or row.kind != Kind.DIR.value:
            puts[directory] = Entry(directory, Kind.DIR, 0o755, int(now * 1e9))
    closing: list[int] = []
    inserts: list[dict[str, Any]] = []
    for path in sorted(puts):
        entry = puts[path]
        if _put(conn, repo_id, number, entry, live.get(path), closing, tally):
            inserts.append(_row_values(repo_id, number, entry))
    for i in range(0, len(closing), _BATCH):
        conn.execute(sa.update(e).where(e.c.id.in_(closing[i : i + _BATCH])).values(rev_to=number))
    if inserts:
        conn.execute(sa.insert(e), inserts)
    return tally


def _live_rows(conn: Connection, repo_id: int, paths: Iterable[str]) -> dict[str, Row[Any]]:
    listed = sorted(paths)
    found: dict[str, Row[Any]] = {}
    for i in range(0, len(listed), _BATCH):
        rows = conn.execute(
            sa.select(e).where(
                e.c.repo_id == repo_id, e.c.path.in_(listed[i : i + _BATCH]), _is_live()
            )
        )
        found.update((row.path, row) for row in rows)
    return found


def _is_live() -> sa.ColumnElement[bool]:
    """``rev_to + 0 IS NULL``, not ``rev_to IS NULL``: the bare form lets a planner
    without statistics (SQLite) pick the ``(repo_id, rev_to)`` index, which walks every
    live row of the repository; the path index finds the few rows directly."""
    return (e.c.rev_to + 0).is_(None)


def _delete(
    conn: Connection, repo_id: int, number: int, path: str, tally: _Tally,
    row: Row[Any] | None = None,
) -> None:
    """Close the live rows at and below ``path``; ``row``, the one at ``path``, goes
    into the tally's diff (a replayed change list, which keeps none, may leave it out)."""
    # [path, path + "0") bounds the index range scan; it holds path, path/... and
    # byte-wise neighbours such as "path-x" or "path.txt", which the OR filters out.
    scope = sa.and_(
        e.c.repo_id == repo_id, _is_live(), e.c.path >= path, e.c.path < path + "0",
        sa.or_(e.c.path == path, below(path)),
    )
    stats = conn.execute(
        sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(e.c.size), 0),
            sa.func.count(e.c.sha256),
        ).where(scope)
    ).one()
    if stats[0] == 0:
        return  # deleting what is not there is a no-op, so retries are harmless
    conn.execute(sa.update(e).where(scope).values(rev_to=number))
    tally.deleted += stats[0]
    tally.files -= stats[2]
    tally.bytes -= int(stats[1])
    tally.applied.append({"op": "delete", "path": path})
    if row is not None:  # else only rows below a path that is not there: none, in a tree
        tally.changed_path(path, row_entry(row), None)


def _put(
    conn: Connection, repo_id: int, number: int, entry: Entry, old: Row[Any] | None,
    closing: list[int], tally: _Tally,
) -> bool:
    """Account for one put; returns False when it changes nothing. The old live row
    is queued for closing (or, for a directory replaced by a file, its subtree is
    deleted now)."""
    old_entry = None
    if old is not None:
        old_entry = row_entry(old)
        if old_entry.same_content(entry) and old_entry.size == entry.size:
            return False
        if old_entry.kind is Kind.DIR and entry.kind is not Kind.DIR:
            _delete(conn, repo_id, number, entry.path, tally, old)
            tally.added += 1
        else:
            closing.append(old.id)
            tally.files -= old.sha256 is not None
            tally.bytes -= old.size
            tally.modified += 1
    else:
        tally.added += 1
    tally.files += entry.kind is Kind.FILE
    tally.bytes += entry.size
    tally.applied.append(change_to_json(Change("put", entry.path, entry)))
    tally.changed_path(entry.path, old_entry, entry)
    return True


def _row_values(repo_id: int, number: int, entry: Entry) -> dict[str, Any]:
    return dict(
        repo_id=repo_id, path=entry.path, parent=parent_of(entry.path),
        kind=entry.kind.value, mode=entry.mode, mtime_ns=entry.mtime_ns,
        sha256=entry.sha256, size=entry.size, target=entry.target,
        rev_from=number, rev_to=None,
    )


def _check_blobs(conn: Connection, changes: Sequence[Change]) -> None:
    wanted = {c.entry.sha256 for c in changes if c.entry is not None and c.entry.sha256}
    if not wanted:
        return
    have: set[str] = set()
    listed = sorted(wanted)
    for i in range(0, len(listed), 500):
        part = listed[i : i + 500]
        have.update(
            conn.execute(sa.select(t.blobs.c.sha256).where(t.blobs.c.sha256.in_(part))).scalars()
        )
    missing = sorted(wanted - have)
    if missing:
        raise MissingData(
            f"the site does not hold {len(missing)} blob(s) named in the commit",
            hint="upload them first (tain push does this), then commit again",
            missing=missing[:100],
        )


def _prev_revision(conn: Connection, repo_id: int, number: int) -> Row[Any] | None:
    return _by_number(conn, repo_id, number) if number else None


def _by_number(conn: Connection, repo_id: int, number: int) -> Row[Any]:
    return conn.execute(
        sa.select(t.revisions).where(
            t.revisions.c.repo_id == repo_id, t.revisions.c.number == number
        )
    ).one()


def _by_commit_id(conn: Connection, repo_id: int, commit_id: str) -> Row[Any] | None:
    return conn.execute(
        sa.select(t.revisions).where(
            t.revisions.c.repo_id == repo_id, t.revisions.c.commit_id == commit_id
        )
    ).first()


def _change_digest(parent_digest: str, applied: list[dict[str, Any]]) -> str:
    """Chains each revision's changes to its parent, so the log itself is verifiable:
    SHA-256 of ``canonical_json({"parent": parent_digest, "changes": applied})``."""
    return chained_digest(parent_digest, canonical_json(applied))


def chained_digest(parent_digest: str, body: bytes) -> str:
    """``_change_digest`` from the change list's canonical JSON (``body``), which a
    commit stores as well: the list is serialised once, not twice. With sorted keys
    "changes" comes before "parent", so the document is these bytes in this order."""
    digest = hashlib.sha256(b'{"changes":')
    digest.update(body)
    digest.update(b',"parent":' + canonical_json(parent_digest) + b"}")
    return digest.hexdigest()
