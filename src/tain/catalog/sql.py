"""``SqlCatalog``: the catalog over SQLAlchemy Core, for SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable

from tain.catalog.access import AccessCatalog
from tain.catalog.activity import ActivityCatalog
from tain.catalog.agents import AgentCatalog
from tain.catalog.alertlog import AlertCatalog
from tain.catalog.auditlog import AuditLog
from tain.catalog.base import Catalog
from tain.catalog.blobs import BlobCatalog
from tain.catalog.commits import CommitCatalog
from tain.catalog.db import Database, create_engine
from tain.catalog.health import HealthCatalog
from tain.catalog.migrate import upgrade
from tain.catalog.mirrorstate import MirrorStateCatalog
from tain.catalog.replica import ReplicaCatalog
from tain.catalog.repos import RepoCatalog
from tain.catalog.scaleout import ScaleOutCatalog
from tain.catalog.sessions import SessionCatalog
from tain.catalog.sources import SourceCatalog
from tain.catalog.stats import StatsCatalog
from tain.catalog.tree import TreeCatalog


class SqlCatalog(
    RepoCatalog, TreeCatalog, CommitCatalog, BlobCatalog, AccessCatalog, AuditLog, AgentCatalog,
    StatsCatalog, AlertCatalog,
    HealthCatalog,
    SessionCatalog, ActivityCatalog,
    SourceCatalog,
    ReplicaCatalog, MirrorStateCatalog,
    ScaleOutCatalog,
):
    """Every catalog operation; each mutation writes its audit entry in its own
    transaction. Build one with ``open_catalog``."""

    def close(self) -> None:
        self._db.dispose()

    @property
    def dialect(self) -> str:
        return self._db.engine.dialect.name


def open_catalog(url: str, *, clock: Callable[[], float] = time.time) -> SqlCatalog:
    """Connect, bring the schema up to date (Alembic), and return the catalog."""
    engine = create_engine(url)
    upgrade(engine)
    return SqlCatalog(Database(engine), clock)


def _conforms(catalog: SqlCatalog) -> Catalog:
    """Checked by mypy: SqlCatalog implements the Catalog protocol."""
    return catalog
