"""Read queries over the versioned tree: lookup, listing, whole tree, history, diff.

Every query is indexed: ``(repo_id, path, rev_from)`` for a path, ``(repo_id, parent,
rev_from)`` for a directory, ``(repo_id, rev_from)``/``(repo_id, rev_to)`` for diffs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from tain.catalog import schema as t
from tain.catalog.models import DiffItem, Revision, Version
from tain.catalog.repos import _repo_row
from tain.catalog.sqlbase import SqlBase
from tain.core.manifest import Entry, Kind
from tain.errors import NotFound

e = t.entries


def live_at(rev: int) -> sa.ColumnElement[bool]:
    return sa.and_(e.c.rev_from <= rev, sa.or_(e.c.rev_to.is_(None), e.c.rev_to > rev))


def below(path: str) -> sa.ColumnElement[bool]:
    """Paths strictly below ``path``: a byte-ordered range, so the index serves it."""
    if path == "":
        return sa.true()
    return sa.and_(e.c.path >= path + "/", e.c.path < path + "0")


def row_entry(row: Row[Any]) -> Entry:
    return Entry(row.path, Kind(row.kind), row.mode, row.mtime_ns, row.sha256, row.size,
                 row.target)


def row_version(row: Row[Any]) -> Version:
    return Version(row_entry(row), row.rev_from, row.rev_to)


class TreeCatalog(SqlBase):
    def resolve_rev(self, repo: str, rev: int | None) -> tuple[int, int]:
        """Return (repo id, revision number) for ``rev`` (None = head), or NotFound."""
        with self._db.read() as conn:
            return _resolve(conn, repo, rev)

    def lookup(self, repo: str, path: str, rev: int | None = None) -> Entry | None:
        with self._db.read() as conn:
            rid, r = _resolve(conn, repo, rev)
            row = conn.execute(
                sa.select(e).where(e.c.repo_id == rid, e.c.path == path, live_at(r))
            ).first()
        return row_entry(row) if row else None

    def list_dir(self, repo: str, path: str, rev: int | None = None) -> list[Entry]:
        with self._db.read() as conn:
            rid, r = _resolve(conn, repo, rev)
            rows = conn.execute(
                sa.select(e).where(e.c.repo_id == rid, e.c.parent == path, live_at(r))
                .order_by(e.c.path)
            ).all()
        return [row_entry(row) for row in rows]

    def tree_page(
        self, repo: str, rev: int | None = None, *, prefix: str = "", after: str = "",
        limit: int = 5000,
    ) -> tuple[int, list[Entry]]:
        """Up to ``limit`` entries live at ``rev`` below ``prefix`` with path > ``after``,
        in byte order of path. Returns (resolved revision, entries)."""
        with self._db.read() as conn:
            rid, r = _resolve(conn, repo, rev, allow_zero=True)
            rows = conn.execute(
                sa.select(e)
                .where(e.c.repo_id == rid, live_at(r), below(prefix), e.c.path > after)
                .order_by(e.c.path).limit(limit)
            ).all()
        return r, [row_entry(row) for row in rows]

    def iter_tree(
        self, repo: str, rev: int | None = None, prefix: str = "", batch: int = 5000
    ) -> Iterator[Entry]:
        """Every entry live at ``rev`` below ``prefix``, in path order, in batches."""
        r = self.resolve_rev(repo, rev)[1] if rev != 0 else 0
        last = ""
        while True:
            _, page = self.tree_page(repo, r, prefix=prefix, after=last, limit=batch)
            yield from page
            if len(page) < batch:
                return
            last = page[-1].path

    def history(self, repo: str, path: str) -> list[Version]:
        """Every kept version of one path, oldest first."""
        with self._db.read() as conn:
            row = _repo_row(conn, repo)
            rows = conn.execute(
                sa.select(e).where(e.c.repo_id == row.id, e.c.path == path)
                .order_by(e.c.rev_from)
            ).all()
        return [row_version(r) for r in rows]

    def diff(self, repo: str, old: int, new: int, prefix: str = "", *,
             exact: bool = False) -> list[DiffItem]:
        """What changed between two revisions (either order), by path: content (a
        directory's new mtime is not content), or with ``exact`` any field."""
        with self._db.read() as conn:
            rid, old = _resolve(conn, repo, old, allow_zero=True)
            _, new = _resolve(conn, repo, new, allow_zero=True)
            lo, hi = min(old, new), max(old, new)
            touched = sa.or_(
                sa.and_(e.c.rev_from > lo, e.c.rev_from <= hi),
                sa.and_(e.c.rev_to > lo, e.c.rev_to <= hi),
            )
            # Sorted here, not in SQL: an ORDER BY path makes SQLite walk the path index
            # over every row of the repository instead of the two revision indexes.
            rows = conn.execute(
                sa.select(*_DIFF_COLUMNS).where(e.c.repo_id == rid, touched, below(prefix))
            ).all()
        return _diff_rows(sorted(rows, key=_PATH_AND_FROM), old, new, exact)

    def get_revision(self, repo: str, number: int | None = None) -> Revision:
        with self._db.read() as conn:
            rid, r = _resolve(conn, repo, number)
            row = conn.execute(
                sa.select(t.revisions).where(
                    t.revisions.c.repo_id == rid, t.revisions.c.number == r
                )
            ).first()
        if row is None:
            raise NotFound(f"{repo} has no revisions yet", hint="push something first")
        return revision_from_row(repo, row)

    def list_revisions(
        self, repo: str, *, limit: int = 50, before: int | None = None
    ) -> list[Revision]:
        """Kept revisions, newest first."""
        with self._db.read() as conn:
            row = _repo_row(conn, repo)
            q = sa.select(t.revisions).where(
                t.revisions.c.repo_id == row.id, t.revisions.c.number >= row.oldest_kept
            )
            if before is not None:
                q = q.where(t.revisions.c.number < before)
            rows = conn.execute(q.order_by(t.revisions.c.number.desc()).limit(limit)).all()
        return [revision_from_row(repo, r) for r in rows]


def _resolve(
    conn: Connection, repo: str, rev: int | None, *, allow_zero: bool = False
) -> tuple[int, int]:
    row = _repo_row(conn, repo)
    if rev is None:
        return row.id, row.head
    if rev == 0 and allow_zero:
        return row.id, 0
    if rev < 1 or rev > row.head:
        raise NotFound(f"{repo} has no revision {rev} (head is {row.head})")
    if rev < row.oldest_kept:
        raise NotFound(
            f"revision {rev} of {repo} was removed by the retention policy",
            hint=f"the oldest kept revision is {row.oldest_kept}",
        )
    return row.id, rev


_DIFF_COLUMNS = (e.c.path, e.c.kind, e.c.mode, e.c.mtime_ns, e.c.sha256, e.c.size,
                 e.c.target, e.c.rev_from, e.c.rev_to)
_PATH_AND_FROM = itemgetter(0, 7)
_KINDS = {k.value: k for k in Kind}
_DiffRow = tuple[str, str, int, int, str | None, int, str | None, int, int | None]


def _diff_rows(rows: Sequence[_DiffRow], old: int, new: int, exact: bool) -> list[DiffItem]:
    """``rows`` (``_DIFF_COLUMNS``, by path and ``rev_from``) as one item a path that
    differs between ``old`` and ``new``. Plain tuples: a diff of a burst has thousands
    of rows, and named access to SQLAlchemy rows cost more than the rest together."""
    out = []
    i, n = 0, len(rows)
    while i < n:
        path, j = rows[i][0], i + 1
        while j < n and rows[j][0] == path:
            j += 1
        before = _state_at(rows, i, j, old)
        after = _state_at(rows, i, j, new)
        i = j
        if before is None and after is None:
            continue
        if before is not None and after is not None and (
                before == after if exact else before.same_content(after)):
            continue
        out.append(DiffItem(path, before, after))
    return out


def _state_at(rows: Sequence[_DiffRow], start: int, end: int, rev: int) -> Entry | None:
    """The entry of one path (``rows[start:end]``) live at ``rev``."""
    for k in range(start, end):
        path, kind, mode, mtime_ns, sha256, size, target, rev_from, rev_to = rows[k]
        if rev_from <= rev and (rev_to is None or rev_to > rev):
            return Entry(path, _KINDS[kind], mode, mtime_ns, sha256, size, target)
    return None


def revision_from_row(repo: str, row: Row[Any]) -> Revision:
    return Revision(
        repo, row.number, row.created_at, row.author, row.message, row.files, row.bytes,
        row.added, row.modified, row.deleted, row.commit_id, row.change_digest, row.signature,
    )
