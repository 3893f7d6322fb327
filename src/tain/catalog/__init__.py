"""The catalog: repositories, revisions, entries, blobs, users, tokens, grants, audit.

One interface (``base.Catalog``), one SQL implementation over SQLite and PostgreSQL.
"""
