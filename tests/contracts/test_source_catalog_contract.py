"""The catalog contract for pull sources, on SQLite and PostgreSQL: jobs are added once,
claimed only when due, unpaused and unleased, finished only by their lease's owner,
and keep the newest ``keep_runs`` runs."""

from __future__ import annotations

import pytest

from tain.catalog.sources import RunOutcome
from tain.catalog.sql import SqlCatalog
from tain.errors import Conflict, NotFound
from tests.catalog import conftest as fixtures
from tests.catalog.conftest import FakeClock

backend = fixtures.backend
db_url = fixtures.db_url
clock = fixtures.clock
catalog = fixtures.catalog

SPEC = {"name": "j", "repo": "r", "kind": "http", "url": "https://h/p/"}


def test_jobs_are_added_once_listed_paused_and_removed(catalog: SqlCatalog,
                                                       clock: FakeClock) -> None:
    added = catalog.add_source("j", "r", SPEC, from_config=False, next_run=None, actor="a")
    assert added.state == "idle" and added.spec == SPEC and not added.paused
    with pytest.raises(Conflict):
        catalog.add_source("j", "r", SPEC, from_config=False, next_run=None, actor="a")
    assert not catalog.replace_source_spec("j", "r", SPEC, next_run=None, actor="a")
    assert catalog.replace_source_spec("j", "r2", SPEC, next_run=5.0, actor="a")
    assert catalog.get_source("j").repo == "r2"
    assert catalog.set_source_paused("j", True, actor="a").to_json()["state"] == "paused"
    assert [r.name for r in catalog.list_sources()] == ["j"]
    catalog.remove_source("j", actor="a")
    for call in (lambda: catalog.get_source("j"), lambda: catalog.remove_source("j", actor="a"),
                 lambda: catalog.list_source_runs("j")):
        with pytest.raises(NotFound):
            call()
    actions = [e.action for e in catalog.audit_entries(target="j")]
    assert actions == ["source.add", "source.update", "source.pause", "source.remove"]


def test_claims_leases_and_run_retention(catalog: SqlCatalog, clock: FakeClock) -> None:
    now = clock()
    catalog.add_source("j", "r", SPEC, from_config=False, next_run=now + 10, actor="a")
    assert catalog.claim_source("j", "me", lease_seconds=30) is None  # not due yet
    catalog.schedule_source("j", now)
    catalog.set_source_paused("j", True, actor="a")
    assert catalog.claim_source("j", "me", lease_seconds=30) is None  # paused
    catalog.set_source_paused("j", False, actor="a")
    ids = []
    for n in range(4):
        catalog.schedule_source("j", clock())
        run_id = catalog.claim_source("j", "me", lease_seconds=30)
        assert run_id is not None
        assert catalog.claim_source("j", "you", lease_seconds=30) is None  # leased
        assert catalog.renew_source_lease("j", "me", lease_seconds=30)
        clock.advance(2)
        catalog.finish_source_run("j", "you", run_id, RunOutcome("failed"), next_run=None,
                                  keep_runs=2)  # not the owner: the job keeps its lease
        assert catalog.get_source("j").lease_owner == "me"
        catalog.finish_source_run("j", "me", run_id, RunOutcome(
            "success", bytes=n, files=1, revision=n + 1, log="x" * 10), next_run=clock() + 60,
            keep_runs=2)
        ids.append(run_id)
    job = catalog.get_source("j")
    assert (job.state, job.last_bytes, job.last_revision, job.lease_owner) == (
        "success", 3, 4, None)
    assert job.last_duration == pytest.approx(2.0)
    runs = catalog.list_source_runs("j")
    assert [r.id for r in runs] == ids[:1:-1] and runs[0].log == "x" * 10
    assert catalog.get_source_run("j", ids[-1]).state == "success"
    with pytest.raises(NotFound):
        catalog.get_source_run("j", ids[0])  # dropped by retention
