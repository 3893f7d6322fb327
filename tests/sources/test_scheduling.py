"""Scheduling pull sources: due times with an injected clock (no sleeping for
schedules), bounded concurrency, leases that one claimer wins (SQLite and
PostgreSQL), stale "syncing" states reset, and config jobs synced at start."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tain.catalog.sources import RunOutcome
from tain.catalog.sql import open_catalog
from tain.config import load
from tain.service.site import open_site
from tain.sources.jobs import add_job, sync_config_jobs
from tain.sources.scheduler import SourceScheduler
from tests.conftest import BOTH_CATALOGS
from tests.sources.upstreams import local_site, rsync_daemon, wait_for, write_tree


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


T0 = 1_800_000_000.0


def test_interval_and_cron_jobs_fire_when_due_with_bounded_concurrency(tmp_path: Path) -> None:
    upstream = tmp_path / "up"
    write_tree(upstream, {"f": b"data"})
    clock = FakeClock(T0)
    sources = "[sources]\nmax_concurrent = 1\n"
    with rsync_daemon(tmp_path, upstream) as url, local_site(tmp_path, sources=sources) as ls:
        site = open_site(load(ls.site_dir), clock=clock)
        try:
            job = {"repo": "mirror", "kind": "rsync", "url": url}
            add_job(site, {**job, "name": "hourly", "every": "1h"}, actor="admin")
            add_job(site, {**job, "name": "cron", "cron": "0 */4 * * *"}, actor="admin")
            add_job(site, {**job, "name": "manual"}, actor="admin")
            scheduler = SourceScheduler(site, draw=lambda: 0.0)

            def settle() -> None:
                wait_for(lambda: not scheduler.running(), what="runs to end")

            assert scheduler.tick() == ["hourly"]  # one at a time; cron's time not come
            settle()
            assert site.catalog.get_source("hourly").next_run == T0 + 3600
            assert site.catalog.get_source("cron").next_run == T0 + 14400  # 08:00 -> 12:00 UTC
            assert site.catalog.get_source("manual").next_run is None
            clock.now = T0 + 3599
            assert scheduler.tick() == []
            clock.now = T0 + 14400
            assert scheduler.tick() == ["cron"]
            settle()
            assert scheduler.tick() == ["hourly"]  # overdue since T0 + 3600
            settle()
            site.catalog.schedule_source("manual", clock.now, actor="admin")  # run-now
            site.catalog.set_source_paused("hourly", True, actor="admin")
            clock.now += 86400
            assert scheduler.tick() == ["cron"]
            settle()
            assert scheduler.tick() == ["manual"]
            settle()
            assert site.catalog.get_source("hourly").to_json()["state"] == "paused"
            assert site.catalog.get_source("manual").state == "success"
            assert site.catalog.get_repo("mirror").head == 1  # identical runs: one revision
        finally:
            site.close()


@BOTH_CATALOGS
def test_one_claimer_wins_a_lease_and_stale_leases_are_reset(
    tmp_path: Path, catalog_env: dict[str, str]
) -> None:
    clock = FakeClock(T0)
    with local_site(tmp_path, env=catalog_env) as ls:
        add_job(ls.site, {"name": "j", "repo": "mirror", "kind": "http",
                          "url": "http://127.0.0.1:9/", "every": "1h"}, actor="admin")
        url = ls.site.config.database_url
        catalogs = [open_catalog(url, clock=clock) for _ in range(4)]
        try:
            won: list[int | None] = []
            barrier = threading.Barrier(len(catalogs))

            def claim(i: int) -> None:
                barrier.wait()
                won.append(catalogs[i].claim_source("j", f"owner{i}", lease_seconds=60))

            threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(catalogs))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sum(r is not None for r in won) == 1
            record = catalogs[0].get_source("j")
            assert record.state == "syncing" and record.lease_expires == T0 + 60
            owner = record.lease_owner or ""
            assert catalogs[1].claim_source("j", "late", lease_seconds=60) is None
            assert not catalogs[0].renew_source_lease("j", "not-owner", lease_seconds=60)
            assert catalogs[0].reset_stale_sources() == []  # lease still valid

            clock.now = T0 + 61  # the owner was killed: its lease lapsed
            assert catalogs[2].reset_stale_sources() == ["j"]
            stale = catalogs[2].get_source("j")
            assert stale.state == "failed" and "interrupted" in (stale.last_error or "")
            assert catalogs[2].list_source_runs("j")[0].state == "failed"
            # the killed owner's late finish does not overwrite anything
            catalogs[0].finish_source_run("j", owner, 1, RunOutcome("success"), next_run=None,
                                          keep_runs=5)
            assert catalogs[0].get_source("j").state == "failed"
            assert catalogs[3].claim_source("j", "next", lease_seconds=60) is not None
        finally:
            for c in catalogs:
                c.close()


def test_config_jobs_are_synced_into_the_catalog(tmp_path: Path) -> None:
    job = ('[[sources.jobs]]\nname = "cfg"\nrepo = "mirror"\nkind = "rsync"\n'
           'url = "rsync://127.0.0.1:9/pub/"\nevery = "6h"\n')
    with local_site(tmp_path, sources=job) as ls:
        site = ls.site
        sync_config_jobs(site)
        record = site.catalog.get_source("cfg")
        assert record.from_config and record.spec["every"] == 21600
        sync_config_jobs(site)  # unchanged: no new audit entry
        assert len(site.catalog.audit_entries(action="source.add")) == 1
        config = ls.site_dir / "tain.toml"
        config.write_text(config.read_text().replace('every = "6h"', 'every = "2h"'))
        changed = open_site(load(ls.site_dir))
        try:
            sync_config_jobs(changed)
            assert changed.catalog.get_source("cfg").spec["every"] == 7200
            config.write_text(config.read_text().split("[[sources.jobs]]")[0])
            removed = open_site(load(ls.site_dir))
            try:
                sync_config_jobs(removed)
                assert removed.catalog.list_sources() == []
            finally:
                removed.close()
        finally:
            changed.close()


def test_bad_sources_config_is_one_clear_error(tmp_path: Path) -> None:
    from tain.errors import UsageError
    with local_site(tmp_path) as ls:
        config = ls.site_dir / "tain.toml"
        config.write_text(config.read_text() + '\n[[sources.jobs]]\nname = "x"\nrepo = "m"\n'
                          'kind = "rsync"\nurl = "http://wrong/"\n')
        with pytest.raises(UsageError, match="bad rsync upstream URL"):
            load(ls.site_dir)
