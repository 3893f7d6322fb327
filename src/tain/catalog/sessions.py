"""Console sign-in: password hashes and server-side sessions.

A session row is keyed by the SHA-256 of the secret in the browser's cookie. It ends
at ``expires_at`` or once it has been idle longer than the caller's idle timeout
(``find_session`` checks both; ``purge_sessions`` deletes such rows). Setting a
password is audited and ends every session of that user; sessions themselves are
status, not changes to data, and are not audited.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from tain.catalog import schema as t
from tain.catalog.models import User
from tain.catalog.sqlbase import SqlBase
from tain.errors import NotFound

s = t.console_sessions


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    id_hash: str
    user: User
    created_at: float
    last_seen: float
    expires_at: float
    address: str


class SessionCatalog(SqlBase):
    def set_password(self, user: str, password_hash: str | None, *, actor: str) -> None:
        """Store ``user``'s password hash (None: no console sign-in) and end their
        sessions, so a changed password locks out whoever knew the old one."""
        with self._db.write() as conn:
            uid = conn.execute(sa.select(t.users.c.id).where(t.users.c.name == user)).scalar()
            if uid is None:
                raise NotFound(f"no user {user!r}", hint="see 'tain user list'")
            conn.execute(sa.update(t.users).where(t.users.c.id == uid)
                         .values(password_hash=password_hash))
            conn.execute(sa.delete(s).where(s.c.user_id == uid))
            self._audit(conn, actor, "user.passwd" if password_hash else "user.passwd.clear",
                        user)

    def password_of(self, user: str) -> tuple[User, str | None] | None:
        """The user and their password hash; None for an unknown user."""
        with self._db.read() as conn:
            row = conn.execute(sa.select(t.users).where(t.users.c.name == user)).first()
        if row is None:
            return None
        return User(row.id, row.name, row.is_admin, row.created_at), row.password_hash

    def create_session(self, id_hash: str, user_id: int, *, expires_at: float,
                       address: str) -> None:
        now = self._clock()
        with self._db.write() as conn:
            conn.execute(sa.insert(s).values(
                id_hash=id_hash, user_id=user_id, created_at=now, last_seen=now,
                expires_at=expires_at, address=address[:64],
            ))

    def find_session(self, id_hash: str, *, idle_timeout: float) -> ConsoleSession | None:
        """The live session with this hash, or None (unknown, expired or idle)."""
        q = (sa.select(s, t.users.c.name, t.users.c.is_admin,
                       t.users.c.created_at.label("user_created"))
             .join(t.users, t.users.c.id == s.c.user_id).where(s.c.id_hash == id_hash))
        with self._db.read() as conn:
            row = conn.execute(q).first()
        now = self._clock()
        if row is None or row.expires_at <= now or row.last_seen + idle_timeout <= now:
            return None
        user = User(row.user_id, row.name, row.is_admin, row.user_created)
        return ConsoleSession(row.id_hash, user, row.created_at, row.last_seen,
                              row.expires_at, row.address)

    def touch_session(self, id_hash: str) -> None:
        with self._db.write() as conn:
            conn.execute(sa.update(s).where(s.c.id_hash == id_hash)
                         .values(last_seen=self._clock()))

    def delete_session(self, id_hash: str) -> None:
        with self._db.write() as conn:
            conn.execute(sa.delete(s).where(s.c.id_hash == id_hash))

    def purge_sessions(self, *, idle_timeout: float) -> int:
        """Delete expired and idle sessions; returns how many."""
        now = self._clock()
        with self._db.write() as conn:
            result = conn.execute(sa.delete(s).where(
                sa.or_(s.c.expires_at <= now, s.c.last_seen <= now - idle_timeout)))
        return int(result.rowcount or 0)
