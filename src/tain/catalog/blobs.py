"""Blob and chunk index rows, retention and the catalog side of garbage collection.

A blob row is written only after the store made the blob durable, and entries name
blobs through a foreign key, so the catalog never names a missing blob and gc can
never delete a blob that a commit (even a concurrent one) references.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tain.catalog import schema as t
from tain.catalog.models import ChunkLocation
from tain.catalog.repos import _repo_row
from tain.catalog.sqlbase import SqlBase
from tain.core.chunking import ChunkRef
from tain.core.retention import oldest_kept

_BATCH = 500


def _batches(items: Iterable[str]) -> Iterable[list[str]]:
    listed = sorted(set(items))
    for i in range(0, len(listed), _BATCH):
        yield listed[i : i + _BATCH]


def _existing(conn: Connection, column: sa.Column[str], values: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for part in _batches(values):
        found.update(conn.execute(sa.select(column).where(column.in_(part))).scalars())
    return found


class BlobCatalog(SqlBase):
    def add_blob(self, sha256: str, size: int, chunks: Sequence[ChunkRef]) -> None:
        """Record a durable blob and the chunks it is made of (idempotent)."""
        self.add_blobs([(sha256, size, chunks)])

    def add_blobs(self, blobs: Sequence[tuple[str, int, Sequence[ChunkRef]]]) -> None:
        """Record many durable blobs in one transaction (idempotent)."""
        with self._db.write() as conn:
            known = _existing(conn, t.blobs.c.sha256, (sha for sha, _, _ in blobs))
            new = {sha: (size, chunks) for sha, size, chunks in blobs if sha not in known}
            if not new:
                return
            now = self._clock()
            conn.execute(sa.insert(t.blobs), [
                dict(sha256=sha, size=size, created_at=now) for sha, (size, _) in new.items()
            ])
            all_chunks = [(sha, c) for sha, (_, chunks) in new.items() for c in chunks]
            indexed = _existing(conn, t.chunks.c.digest, (c.digest for _, c in all_chunks))
            rows = []
            for sha, c in all_chunks:
                if c.digest not in indexed:
                    indexed.add(c.digest)
                    rows.append(dict(digest=c.digest, sha256=sha, offset=c.offset,
                                     length=c.length))
            if rows:
                conn.execute(sa.insert(t.chunks), rows)

    def known_blobs(self, shas: Iterable[str]) -> set[str]:
        have: set[str] = set()
        with self._db.read() as conn:
            for part in _batches(shas):
                have.update(conn.execute(
                    sa.select(t.blobs.c.sha256).where(t.blobs.c.sha256.in_(part))
                ).scalars())
        return have

    def blob_size(self, sha256: str) -> int | None:
        with self._db.read() as conn:
            return conn.execute(
                sa.select(t.blobs.c.size).where(t.blobs.c.sha256 == sha256)
            ).scalar()

    def locate_chunks(self, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        """Where each known chunk lies inside a stored blob."""
        found: dict[str, ChunkLocation] = {}
        with self._db.read() as conn:
            for part in _batches(digests):
                for r in conn.execute(sa.select(t.chunks).where(t.chunks.c.digest.in_(part))):
                    found[r.digest] = ChunkLocation(r.digest, r.sha256, r.offset, r.length)
        return found

    def apply_retention(self, repo: str, *, actor: str) -> int:
        """Forget revisions the repository's policy no longer keeps; returns how many
        entry rows were dropped. The oldest kept revision is recorded on the repo."""
        with self._db.write() as conn:
            row = _repo_row(conn, repo, lock=True)
            revs = conn.execute(
                sa.select(t.revisions.c.number, t.revisions.c.created_at)
                .where(t.revisions.c.repo_id == row.id,
                       t.revisions.c.number >= row.oldest_kept)
                .order_by(t.revisions.c.number)
            ).all()
            first = oldest_kept(
                [(r.number, r.created_at) for r in revs], keep_last=row.keep_last,
                keep_days=row.keep_days, now=self._clock(),
            )
            if first <= row.oldest_kept:
                return 0
            dropped = conn.execute(
                sa.delete(t.entries).where(
                    t.entries.c.repo_id == row.id, t.entries.c.rev_to.is_not(None),
                    t.entries.c.rev_to <= first,
                )
            ).rowcount
            conn.execute(
                sa.update(t.repos).where(t.repos.c.id == row.id).values(oldest_kept=first)
            )
            self._audit(conn, actor, "retention.apply", repo, oldest_kept=first,
                        entries_dropped=dropped)
        return int(dropped)

    def unreferenced_blobs(self, *, created_before: float) -> list[tuple[str, int]]:
        """Blobs no entry names (no kept revision uses them), older than the grace time."""
        q = sa.select(t.blobs.c.sha256, t.blobs.c.size).where(
            t.blobs.c.created_at < created_before,
            ~sa.exists().where(t.entries.c.sha256 == t.blobs.c.sha256),
        )
        with self._db.read() as conn:
            return [(r.sha256, r.size) for r in conn.execute(q)]

    def forget_blobs(self, shas: Iterable[str]) -> list[str]:
        """Delete blob rows still unreferenced; returns those deleted (safe to remove)."""
        gone: list[str] = []
        with self._db.write() as conn:
            for part in _batches(shas):
                unused = list(conn.execute(
                    sa.select(t.blobs.c.sha256).where(
                        t.blobs.c.sha256.in_(part),
                        ~sa.exists().where(t.entries.c.sha256 == t.blobs.c.sha256),
                    )
                ).scalars())
                if unused:
                    conn.execute(sa.delete(t.chunks).where(t.chunks.c.sha256.in_(unused)))
                    conn.execute(sa.delete(t.blobs).where(t.blobs.c.sha256.in_(unused)))
                    gone.extend(unused)
        return gone

    def record_event(self, actor: str, action: str, target: str, **details: object) -> None:
        """Append an audit entry for an operation that is not a catalog change."""
        with self._db.write() as conn:
            self._audit(conn, actor, action, target, **details)

    # -- scrub, status, backup ------------------------------------------------------------

    def blob_page(
        self, *, after: str = "", below: str | None = None, limit: int = 1000
    ) -> list[tuple[str, int]]:
        """Blob names and sizes in name order, for names ``> after`` and ``< below``
        (a prefix bounds a slice of the name space: ``after="8"`` starts at ``8000...``)."""
        q = sa.select(t.blobs.c.sha256, t.blobs.c.size).where(t.blobs.c.sha256 > after)
        if below is not None:
            q = q.where(t.blobs.c.sha256 < below)
        q = q.order_by(t.blobs.c.sha256).limit(limit)
        with self._db.read() as conn:
            return [(r.sha256, r.size) for r in conn.execute(q)]

    def blob_totals(self, *, after: str = "", below: str | None = None) -> tuple[int, int]:
        """How many blobs there are, and their bytes, in the same bounds as ``blob_page``."""
        q = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.blobs.c.size), 0)).where(
            t.blobs.c.sha256 > after
        )
        if below is not None:
            q = q.where(t.blobs.c.sha256 < below)
        with self._db.read() as conn:
            count, total = conn.execute(q).one()
        return int(count), int(total)

    def blob_uses(self, sha256: str, *, limit: int = 20) -> list[tuple[str, str, int]]:
        """Where kept revisions use a blob: ``(repo, path, revision)``, the revision being
        the newest in which that version is live; live versions first."""
        q = (
            sa.select(t.repos.c.name, t.entries.c.path, t.entries.c.rev_to, t.repos.c.head)
            .join(t.repos, t.repos.c.id == t.entries.c.repo_id)
            .where(t.entries.c.sha256 == sha256)
            .order_by(t.entries.c.rev_to.is_(None).desc(), t.entries.c.rev_to.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            return [
                (r.name, r.path, r.head if r.rev_to is None else r.rev_to - 1)
                for r in conn.execute(q)
            ]
