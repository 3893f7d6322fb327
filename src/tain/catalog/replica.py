"""The replication side of the catalog: reading the revision log with each revision's
change list, and writing a revision received from an upstream site under its own
number, after checking that replaying it yields exactly the signed change digest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from tain.catalog import schema as t
from tain.catalog.commits import (
    _apply,
    _by_number,
    _change_digest,
    _check_blobs,
    _delete,
    _live_rows,
    _put,
    _row_values,
    _Tally,
)
from tain.catalog.models import Revision
from tain.catalog.repos import _repo_row
from tain.catalog.sqlbase import SqlBase
from tain.catalog.tree import revision_from_row
from tain.core.manifest import Change, canonical_json, change_from_json
from tain.errors import Conflict, IntegrityError

r = t.revisions
c = t.revision_changes


@dataclass(frozen=True)
class LoggedRevision:
    """A revision and the change list it applied (canonical JSON text), or None when the
    revision predates stored change lists."""

    revision: Revision
    changes: str | None


class ReplicaCatalog(SqlBase):
    def change_log(
        self, repo: str, since: int, *, max_bytes: int = 8 << 20, limit: int = 1000
    ) -> list[LoggedRevision]:
        """Revisions after ``since`` in order, with their change lists, until about
        ``max_bytes`` of change lists (always at least one revision)."""
        with self._db.read() as conn:
            row = _repo_row(conn, repo)
            rows = conn.execute(
                sa.select(r, c.c.body).select_from(r.outerjoin(
                    c, sa.and_(c.c.repo_id == r.c.repo_id, c.c.number == r.c.number)))
                .where(r.c.repo_id == row.id, r.c.number > since)
                .order_by(r.c.number).limit(limit)
            ).all()
        out: list[LoggedRevision] = []
        size = 0
        for found in rows:
            if out and size + len(found.body or "") > max_bytes:
                break
            size += len(found.body or "")
            out.append(LoggedRevision(revision_from_row(repo, found), found.body))
        return out

    def replicate(self, upstream: Revision, changes_text: str, *, actor: str) -> Revision:
        """Write ``upstream`` (revision head+1 here) by replaying its change list. The
        digest of parent + list must be the upstream's change digest, and the replay
        must apply exactly that list; otherwise nothing is written."""
        applied = json.loads(changes_text)
        changes = [change_from_json(raw) for raw in applied]
        with self._db.write() as conn:
            row = _repo_row(conn, upstream.repo, lock=True)
            if upstream.number != row.head + 1:
                raise Conflict(f"{upstream.repo}: revision {upstream.number} does not follow "
                               f"the local head {row.head}")
            parent = _by_number(conn, row.id, row.head).change_digest if row.head else ""
            if _change_digest(parent, applied) != upstream.change_digest:
                raise IntegrityError(
                    f"{upstream.repo}@{upstream.number}: the change list does not hash to the "
                    "revision's change digest (or the local history differs)")
            _check_blobs(conn, changes)
            tally = _replay(conn, row.id, upstream.number, changes, upstream.created_at)
            if canonical_json(tally.applied) != canonical_json(applied):
                raise IntegrityError(f"{upstream.repo}@{upstream.number}: replaying the "
                                     "change list here does not give the same changes")
            self._write_revision(conn, row.id, upstream, changes_text, actor=actor)
            return revision_from_row(upstream.repo, _by_number(conn, row.id, upstream.number))

    def replicate_snapshot(
        self, upstream: Revision, changes: Sequence[Change], *, actor: str
    ) -> Revision:
        """Jump to ``upstream``'s state (revisions before it are not kept upstream):
        ``changes`` turn the local head into that state; the revision keeps the
        upstream's number, digest and signature, and becomes the oldest kept one."""
        with self._db.write() as conn:
            row = _repo_row(conn, upstream.repo, lock=True)
            if upstream.number <= row.head:
                raise Conflict(f"{upstream.repo}: snapshot revision {upstream.number} is not "
                               f"after the local head {row.head}")
            _check_blobs(conn, changes)
            _apply(conn, row.id, upstream.number, changes, upstream.created_at)
            self._write_revision(conn, row.id, upstream, None, actor=actor)
            conn.execute(sa.update(t.repos).where(t.repos.c.id == row.id)
                         .values(oldest_kept=upstream.number))
            return revision_from_row(upstream.repo, _by_number(conn, row.id, upstream.number))

    def _write_revision(self, conn: sa.Connection, repo_id: int, rev: Revision,
                        changes_text: str | None, *, actor: str) -> None:
        conn.execute(sa.insert(r).values(
            repo_id=repo_id, number=rev.number, created_at=rev.created_at, author=rev.author,
            message=rev.message, files=rev.files, bytes=rev.bytes, added=rev.added,
            modified=rev.modified, deleted=rev.deleted, commit_id=rev.commit_id,
            change_digest=rev.change_digest, signature=rev.signature))
        if changes_text is not None:
            conn.execute(sa.insert(c).values(repo_id=repo_id, number=rev.number,
                                             body=changes_text))
        conn.execute(sa.update(t.repos).where(t.repos.c.id == repo_id).values(head=rev.number))
        self._audit(conn, actor, "mirror.replicate", f"{rev.repo}@{rev.number}",
                    snapshot=changes_text is None, author=rev.author)


def _replay(
    conn: sa.Connection, repo_id: int, number: int, changes: Sequence[Change], now: float
) -> _Tally:
    """Apply a recorded change list. The batched apply orders deletes before puts,
    which is the recorded order unless one path was both deleted and put (a directory
    replaced by a file); then the list is replayed one change at a time, in order."""
    deleted = {ch.path for ch in changes if ch.op == "delete"}
    if not any(ch.op == "put" and ch.path in deleted for ch in changes):
        return _apply(conn, repo_id, number, changes, now)
    tally = _Tally()
    e = t.entries
    for change in changes:
        if change.op == "delete" or change.entry is None:
            _delete(conn, repo_id, number, change.path, tally)
            continue
        closing: list[int] = []
        old = _live_rows(conn, repo_id, [change.path]).get(change.path)
        changed = _put(conn, repo_id, number, change.entry, old, closing, tally)
        if closing:
            conn.execute(sa.update(e).where(e.c.id.in_(closing)).values(rev_to=number))
        if changed:
            conn.execute(sa.insert(e).values(**_row_values(repo_id, number, change.entry)))
    return tally
