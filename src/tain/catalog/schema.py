"""The catalog's tables (SQLAlchemy Core). Alembic migrations must match this file;
``tests/catalog/test_migrations.py`` checks that they do.

Entries are stored with the revision range in which they are live
(``rev_from <= r < rev_to``, ``rev_to`` NULL while live), so a commit touching k
paths writes O(k) rows and the tree at any revision is a query, not a copy.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Byte-wise ordering on every engine: path range scans (``p/`` .. ``p0``) rely on it.
PathText = Text().with_variant(Text(collation="C"), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

repos = Table(
    "repos", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("public", Boolean, nullable=False, default=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("head", Integer, nullable=False, default=0),
    Column("keep_last", Integer, nullable=True),
    Column("keep_days", Float, nullable=True),
    Column("oldest_kept", Integer, nullable=False, default=1),
)

revisions = Table(
    "revisions", metadata,
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("author", String(64), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("files", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("added", Integer, nullable=False),
    Column("modified", Integer, nullable=False),
    Column("deleted", Integer, nullable=False),
    Column("commit_id", String(64), nullable=True),
    Column("change_digest", String(64), nullable=False),
    Column("signature", Text, nullable=True),
    UniqueConstraint("repo_id", "number"),
    UniqueConstraint("repo_id", "commit_id"),
)

blobs = Table(
    "blobs", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

chunks = Table(
    "chunks", metadata,
    Column("digest", String(64), primary_key=True),
    Column("sha256", String(64), ForeignKey("blobs.sha256", ondelete="CASCADE"), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("length", Integer, nullable=False),
    Index(None, "sha256"),
)

entries = Table(
    "entries", metadata,
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("path", PathText, nullable=False),
    Column("parent", PathText, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("mode", Integer, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("sha256", String(64), ForeignKey("blobs.sha256"), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("target", Text, nullable=True),
    Column("rev_from", Integer, nullable=False),
    Column("rev_to", Integer, nullable=True),
    Index(None, "repo_id", "path", "rev_from"),
    Index(None, "repo_id", "parent", "rev_from"),
    Index(None, "repo_id", "rev_from"),
    Index(None, "repo_id", "rev_to"),
    Index(None, "sha256"),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("password_hash", Text, nullable=True),
)

tokens = Table(
    "tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
)

grants = Table(
    "grants", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("role", Integer, nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "action"),
    Index(None, "actor"),
)

# One row (id = 1): the chain head, locked by every append so the chain never forks.
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row per agent (one watched source directory): its latest heartbeat. Heartbeats are
# frequent status reports, not changes to data, so they are not audited; forgetting an
# agent is.
agents = Table(
    "agents", metadata,
    Column("id", String(64), primary_key=True),
    Column("repo", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("directory", Text, nullable=False),
    Column("version", String(32), nullable=False),
    Column("queue_length", BigInteger, nullable=False),
    Column("last_revision", Integer, nullable=True),
    Column("current_site", Text, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("user_name", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

# --- mirrors ---
# The change list each revision applied (canonical JSON, exactly as its change digest
# hashed it), so a mirror can replay the revision and check the digest chain.
revision_changes = Table(
    "revision_changes", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=False),
)

# The latest signed, expiring head statement of each repository (made by the primary,
# copied verbatim by mirrors).
head_statements = Table(
    "head_statements", metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("body", Text, nullable=False),
)

# The site's key chain: seq 0 names the root key, each later row hands over from the
# key before it and is signed by it.
key_rotations = Table(
    "key_rotations", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("old_key", Text, nullable=True),
    Column("new_key", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("signature", Text, nullable=True),
)

# A mirror's trace record per repository (like ftpsync's trace files).
mirror_trace = Table(
    "mirror_trace", metadata,
    Column("repo", String(64), primary_key=True),
    Column("upstream", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("upstream_head", Integer, nullable=False),
    Column("last_attempt_at", Float, nullable=True),
    Column("last_success_at", Float, nullable=True),
    Column("last_bytes", BigInteger, nullable=False),
    Column("last_duration", Float, nullable=False),
    Column("last_error", Text, nullable=True),
)
