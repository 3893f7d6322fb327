"""Repositories and their settings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from tain.catalog import schema as t
from tain.catalog.models import Repo
from tain.catalog.sqlbase import SqlBase
from tain.core.paths import check_repo_name
from tain.errors import Conflict, NotFound, UsageError

_UNSET: Any = object()


class RepoCatalog(SqlBase):
    def create_repo(
        self, name: str, *, public: bool, description: str = "", actor: str
    ) -> Repo:
        check_repo_name(name)
        with self._db.write() as conn:
            if conn.execute(sa.select(t.repos.c.id).where(t.repos.c.name == name)).first():
                raise Conflict(f"repository {name!r} already exists")
            conn.execute(
                sa.insert(t.repos).values(
                    name=name, public=public, description=description,
                    created_at=self._clock(), head=0, oldest_kept=1,
                )
            )
            self._audit(conn, actor, "repo.create", name, public=public)
            return _repo(_repo_row(conn, name))

    def get_repo(self, name: str) -> Repo:
        with self._db.read() as conn:
            return _repo(_repo_row(conn, name))

    def list_repos(self) -> list[Repo]:
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.repos).order_by(t.repos.c.name)).all()
        return [_repo(r) for r in rows]

    def update_repo(
        self,
        name: str,
        *,
        actor: str,
        public: bool | None = None,
        description: str | None = None,
        keep_last: int | None = _UNSET,
        keep_days: float | None = _UNSET,
    ) -> Repo:
        """Change settings; ``keep_last``/``keep_days`` accept None to clear a limit."""
        values: dict[str, Any] = {}
        if public is not None:
            values["public"] = public
        if description is not None:
            values["description"] = description
        if keep_last is not _UNSET:
            if keep_last is not None and keep_last < 1:
                raise UsageError("keep_last must be at least 1")
            values["keep_last"] = keep_last
        if keep_days is not _UNSET:
            if keep_days is not None and keep_days <= 0:
                raise UsageError("keep_days must be positive")
            values["keep_days"] = keep_days
        with self._db.write() as conn:
            row = _repo_row(conn, name)
            if values:
                conn.execute(sa.update(t.repos).where(t.repos.c.id == row.id).values(**values))
                self._audit(conn, actor, "repo.update", name, **values)
            return _repo(_repo_row(conn, name))

    def delete_repo(self, name: str, *, actor: str) -> None:
        """Delete a repository with all its revisions; its blobs become garbage."""
        with self._db.write() as conn:
            row = _repo_row(conn, name)
            for table in (t.entries, t.revisions, t.grants, t.revision_changes, t.head_statements):
                conn.execute(sa.delete(table).where(table.c.repo_id == row.id))
            conn.execute(sa.delete(t.repos).where(t.repos.c.id == row.id))
            self._audit(conn, actor, "repo.delete", name, head=row.head)


def _repo_row(conn: Connection, name: str, *, lock: bool = False) -> Row[Any]:
    q = sa.select(t.repos).where(t.repos.c.name == name)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound(f"no repository {name!r}", hint="see 'tain repo list'")
    return row


def _repo(row: Row[Any]) -> Repo:
    return Repo(
        row.id, row.name, row.public, row.description, row.created_at, row.head,
        row.keep_last, row.keep_days, row.oldest_kept,
    )
