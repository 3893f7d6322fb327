"""Facts gathered from a real site: agents (with queue growth across checks), disks,
the last scrub, failed scheduled jobs and the audit chain."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tain.catalog import schema as t
from tain.catalog.agents import AgentReport
from tain.catalog.sql import SqlCatalog
from tain.config import load
from tain.monitor.facts import FactGatherer
from tain.monitor.providers import Providers
from tain.service.scheduler import JobResult
from tain.service.setup import create_site
from tain.service.site import open_site
from tests.catalog.conftest import FakeClock


def test_facts_from_a_real_site(tmp_path: Path) -> None:
    create_site(tmp_path / "site", listen="127.0.0.1:1", admin="admin", env={})
    clock = FakeClock()
    site = open_site(load(tmp_path / "site", {}), clock=clock)
    try:
        results = {"backup": JobResult("backup", clock.now, "no space left on device")}
        providers = Providers()
        providers.add_jobs(lambda: (_ for _ in ()).throw(RuntimeError("broken provider")))
        gatherer = FactGatherer(site, providers, jobs=lambda: results, audit_every=3600)
        site.catalog.create_repo("www", public=False, actor="admin")
        queues = []
        for queue in (1, 5, 9, 9, 2):
            site.catalog.record_heartbeat(AgentReport("a1", "www", "h", "/src", "1", queue,
                                                      None, "x"), user="admin", address="::1")
            queues.append(gatherer.gather(clock.now).agents[0].queue_growing_checks)
        assert queues == [0, 1, 2, 2, 0]
        site.catalog.record_event("scheduler", "scrub", "store", unrepaired=2, repaired=1)
        facts = gatherer.gather(clock.now)
        assert facts.scrub is not None and (facts.scrub.unrepaired, facts.scrub.repaired) == (2,
                                                                                              1)
        [job] = facts.jobs  # the broken provider is logged and skipped
        assert (job.name, job.ok, job.message) == ("backup", False, "no space left on device")
        [disk] = facts.disks
        assert disk.available and disk.path.endswith("blobs") and disk.total_bytes
        assert facts.audit is not None and facts.audit.ok
        assert isinstance(site.catalog, SqlCatalog)
        with site.catalog._db.write() as conn:  # someone edits the log behind tain's back
            conn.execute(sa.update(t.audit).where(t.audit.c.seq == 1).values(actor="mallory"))
        assert gatherer.gather(clock.now).audit.ok  # type: ignore[union-attr]  # cached
        clock.advance(3600)
        audit = gatherer.gather(clock.now).audit
        assert audit is not None and not audit.ok and audit.problems
    finally:
        site.close()
