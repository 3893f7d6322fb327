"""Users, API tokens and per-repository grants."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from tain.catalog import schema as t
from tain.catalog.models import Grant, Role, Token, User
from tain.catalog.sqlbase import SqlBase
from tain.core.paths import check_user_name
from tain.errors import Conflict, NotFound


class AccessCatalog(SqlBase):
    def create_user(self, name: str, *, is_admin: bool, actor: str) -> User:
        check_user_name(name)
        with self._db.write() as conn:
            if _user_row(conn, name):
                raise Conflict(f"user {name!r} already exists")
            now = self._clock()
            uid = conn.execute(
                sa.insert(t.users).values(name=name, is_admin=is_admin, created_at=now)
            ).inserted_primary_key[0]  # type: ignore[index]
            self._audit(conn, actor, "user.add", name, is_admin=is_admin)
        return User(uid, name, is_admin, now)

    def get_user(self, name: str) -> User:
        with self._db.read() as conn:
            row = _user_row(conn, name)
        if row is None:
            raise NotFound(f"no user {name!r}", hint="see 'tain user list'")
        return _user(row)

    def list_users(self) -> list[User]:
        with self._db.read() as conn:
            rows = conn.execute(sa.select(t.users).order_by(t.users.c.name)).all()
        return [_user(r) for r in rows]

    def delete_user(self, name: str, *, actor: str) -> None:
        with self._db.write() as conn:
            row = _user_row(conn, name)
            if row is None:
                raise NotFound(f"no user {name!r}")
            conn.execute(sa.delete(t.tokens).where(t.tokens.c.user_id == row.id))
            conn.execute(sa.delete(t.grants).where(t.grants.c.user_id == row.id))
            conn.execute(sa.delete(t.users).where(t.users.c.id == row.id))
            self._audit(conn, actor, "user.remove", name)

    def create_token(
        self, user: str, *, name: str, token_hash: str, expires_at: float | None, actor: str
    ) -> Token:
        with self._db.write() as conn:
            row = _user_row(conn, user)
            if row is None:
                raise NotFound(f"no user {user!r}")
            now = self._clock()
            tid = conn.execute(
                sa.insert(t.tokens).values(
                    user_id=row.id, name=name, token_hash=token_hash, created_at=now,
                    expires_at=expires_at,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self._audit(conn, actor, "token.create", user, token_id=tid, name=name,
                        expires_at=expires_at)
        return Token(tid, user, name, now, expires_at, None, None)

    def find_token(self, token_hash: str) -> tuple[Token, User] | None:
        q = (
            sa.select(t.tokens, t.users.c.name.label("user_name"), t.users.c.is_admin,
                      t.users.c.created_at.label("user_created"))
            .join(t.users, t.users.c.id == t.tokens.c.user_id)
            .where(t.tokens.c.token_hash == token_hash)
        )
        with self._db.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        user = User(row.user_id, row.user_name, row.is_admin, row.user_created)
        return _token(row), user

    def touch_token(self, token_id: int) -> None:
        """Record use, at most once a minute per token (keeps reads cheap)."""
        now = self._clock()
        with self._db.write() as conn:
            conn.execute(
                sa.update(t.tokens)
                .where(t.tokens.c.id == token_id)
                .where(sa.or_(t.tokens.c.last_used_at.is_(None),
                              t.tokens.c.last_used_at < now - 60))
                .values(last_used_at=now)
            )

    def list_tokens(self, user: str | None = None) -> list[Token]:
        q = (
            sa.select(t.tokens, t.users.c.name.label("user_name"))
            .join(t.users, t.users.c.id == t.tokens.c.user_id)
            .order_by(t.tokens.c.id)
        )
        if user:
            q = q.where(t.users.c.name == user)
        with self._db.read() as conn:
            return [_token(r) for r in conn.execute(q).all()]

    def revoke_token(self, token_id: int, *, actor: str) -> Token:
        with self._db.write() as conn:
            row = conn.execute(
                sa.select(t.tokens, t.users.c.name.label("user_name"))
                .join(t.users, t.users.c.id == t.tokens.c.user_id)
                .where(t.tokens.c.id == token_id)
            ).first()
            if row is None:
                raise NotFound(f"no token with id {token_id}", hint="see 'tain token list'")
            now = self._clock()
            if row.revoked_at is None:
                conn.execute(
                    sa.update(t.tokens).where(t.tokens.c.id == token_id).values(revoked_at=now)
                )
                self._audit(conn, actor, "token.revoke", row.user_name, token_id=token_id)
        token = _token(row)
        return Token(token.id, token.user, token.name, token.created_at, token.expires_at,
                     token.revoked_at or now, token.last_used_at)

    def set_grant(self, user: str, repo: str, role: Role | None, *, actor: str) -> None:
        """Give ``user`` ``role`` on ``repo``; ``None`` removes the grant."""
        with self._db.write() as conn:
            urow = _user_row(conn, user)
            rid = conn.execute(sa.select(t.repos.c.id).where(t.repos.c.name == repo)).scalar()
            if urow is None:
                raise NotFound(f"no user {user!r}")
            if rid is None:
                raise NotFound(f"no repository {repo!r}")
            where = (t.grants.c.user_id == urow.id) & (t.grants.c.repo_id == rid)
            conn.execute(sa.delete(t.grants).where(where))
            if role is not None:
                conn.execute(
                    sa.insert(t.grants).values(user_id=urow.id, repo_id=rid, role=int(role))
                )
            self._audit(conn, actor, "grant.set" if role else "grant.remove", f"{user}@{repo}",
                        role=str(role) if role else None)

    def list_grants(self, *, user: str | None = None, repo: str | None = None) -> list[Grant]:
        q = (
            sa.select(t.users.c.name.label("user"), t.repos.c.name.label("repo"), t.grants.c.role)
            .join(t.users, t.users.c.id == t.grants.c.user_id)
            .join(t.repos, t.repos.c.id == t.grants.c.repo_id)
            .order_by(t.repos.c.name, t.users.c.name)
        )
        if user:
            q = q.where(t.users.c.name == user)
        if repo:
            q = q.where(t.repos.c.name == repo)
        with self._db.read() as conn:
            return [Grant(r.user, r.repo, Role(r.role)) for r in conn.execute(q).all()]

    def role_of(self, user_id: int, repo: str) -> Role | None:
        q = (
            sa.select(t.grants.c.role)
            .join(t.repos, t.repos.c.id == t.grants.c.repo_id)
            .where(t.grants.c.user_id == user_id, t.repos.c.name == repo)
        )
        with self._db.read() as conn:
            role = conn.execute(q).scalar()
        return Role(role) if role is not None else None


def _user_row(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(sa.select(t.users).where(t.users.c.name == name)).first()


def _user(row: Row[Any]) -> User:
    return User(row.id, row.name, row.is_admin, row.created_at)


def _token(row: Row[Any]) -> Token:
    return Token(row.id, row.user_name, row.name, row.created_at, row.expires_at,
                 row.revoked_at, row.last_used_at)
