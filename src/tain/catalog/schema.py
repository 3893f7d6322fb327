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

# --- STATS AND ALERTS ---
# Usage counted in memory and added to per-day rows every few seconds (never a row per
# request). ``day`` is the UTC date (YYYY-MM-DD); ``site`` the name of the site (or
# node) that counted, so sites sharing a catalog, or rows gathered from several
# sites, stay apart.
stats_downloads = Table(
    "stats_downloads", metadata,
    Column("day", String(10), primary_key=True),
    Column("site", String(255), primary_key=True),
    Column("repo", String(64), primary_key=True),
    Column("downloads", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
)

# The most downloaded paths of a repository per day; at most ``[stats] popular_paths``
# rows per (day, site, repo), the least counted giving way (space-saving counting).
stats_popular = Table(
    "stats_popular", metadata,
    Column("day", String(10), primary_key=True),
    Column("site", String(255), primary_key=True),
    Column("repo", String(64), primary_key=True),
    Column("path", PathText, primary_key=True),
    Column("downloads", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
)

stats_pushes = Table(
    "stats_pushes", metadata,
    Column("day", String(10), primary_key=True),
    Column("site", String(255), primary_key=True),
    Column("repo", String(64), primary_key=True),
    Column("commits", BigInteger, nullable=False),
    Column("bytes_received", BigInteger, nullable=False),
    Column("files_changed", BigInteger, nullable=False),
    Column("latency_sum", Float, nullable=False),
    Column("latency_max", Float, nullable=False),
)

# Commit latency per day as histogram buckets (``bucket``: index into
# tain.core.histogram.LATENCY_BUCKETS, the last one is +Inf).
stats_push_latency = Table(
    "stats_push_latency", metadata,
    Column("day", String(10), primary_key=True),
    Column("site", String(255), primary_key=True),
    Column("repo", String(64), primary_key=True),
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
)

# Alerts: open ones (``resolved_at`` NULL, one per key) and recently resolved ones.
alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(512), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("subject", String(440), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("last_sent_at", Float, nullable=True),
    Column("sends", Integer, nullable=False),
    Column("resolved_at", Float, nullable=True),
    Index(None, "key", "resolved_at"),
    Index(None, "resolved_at"),
)

# --- HEALTH ---
# What the health checks of other sites found (see tain.mirror.health): one row per
# checked site, one per (site, repository) with its rotation state, and the lag history
# (one row per site, repository and check) for charts. ``health_lease`` lets one of
# several ``tain serve`` processes on a shared catalog run the checks at a time.
site_health = Table(
    "site_health", metadata,
    Column("site", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("up", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("version", String(32), nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("throughput", Float, nullable=True),
    Column("checked_at", Float, nullable=False),
)

site_repo_health = Table(
    "site_repo_health", metadata,
    Column("site", String(64), primary_key=True),
    Column("repo", String(64), primary_key=True),
    Column("revision", Integer, nullable=True),
    Column("lag_revisions", Integer, nullable=True),
    Column("lag_seconds", Float, nullable=True),
    Column("ok", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("sample_path", Text, nullable=True),
    Column("in_rotation", Boolean, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("successes", Integer, nullable=False),
    Column("checked_at", Float, nullable=False),
    Column("changed_at", Float, nullable=False),
)

site_lag_history = Table(
    "site_lag_history", metadata,
    Column("id", Integer, primary_key=True),
    Column("site", String(64), nullable=False),
    Column("repo", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("revision", Integer, nullable=True),
    Column("lag_revisions", Integer, nullable=True),
    Column("lag_seconds", Float, nullable=True),
    Column("up", Boolean, nullable=False),
    Index(None, "site", "repo", "at"),
    Index(None, "at"),
)

health_lease = Table(
    "health_lease", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# --- console ---
# Web console sign-in sessions: the cookie holds a random secret, the row only its
# SHA-256, so a leaked catalog cannot be replayed as a session. A session ends at
# ``expires_at`` or after the configured idle time since ``last_seen``.
console_sessions = Table(
    "console_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("address", String(64), nullable=False),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)

# --- SOURCES ---

# One row per pull source job (tain source add, or [[sources.jobs]] in tain.toml): its
# spec as JSON, its state and last-run figures, and its lease. A scheduler takes a job
# by setting the lease in one UPDATE guarded by "lease expired", so several sites on
# one database never run a job twice; a lease left by a killed process simply expires.
source_jobs = Table(
    "source_jobs", metadata,
    Column("name", String(64), primary_key=True),
    Column("repo", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("from_config", Boolean, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("next_run", Float, nullable=True),
    Column("last_start", Float, nullable=True),
    Column("last_end", Float, nullable=True),
    Column("last_duration", Float, nullable=True),
    Column("last_bytes", BigInteger, nullable=True),
    Column("last_files", BigInteger, nullable=True),
    Column("last_revision", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires", Float, nullable=True),
)

# The runs of each job with their log; the oldest beyond the job's keep_runs are dropped.
source_runs = Table(
    "source_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("job", String(64), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("state", String(16), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("files", BigInteger, nullable=False),
    Column("revision", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("log", Text, nullable=False),
    Index(None, "job", "id"),
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

# --- scale-out singletons and mirror hardening ---

# Per key rotation (key_rotations.seq), the first revision of each repository the new
# key signs, as canonical JSON {"repo": number}; signed inside the rotation statement.
# No row: a rotation made before this was recorded (either key may have signed).
key_rotation_starts = Table(
    "key_rotation_starts", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=False),
)
