"""Pull sources inside real ``tain serve`` processes: two sites on one PostgreSQL run
a job once, and a ``kill -9`` in the middle of a run leaves no partial revision, no
rsync behind, a stale state that the next start resets, and a next run that completes."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tain.catalog.sql import open_catalog
from tain.config import CONFIG_NAME, load
from tain.service.setup import create_site
from tests.conftest import SiteProcess, free_port
from tests.pg import fresh_pg_database
from tests.sources.upstreams import rsync_daemon, tree_digests, wait_for, write_tree

NEVER = "0 0 1 1 *"  # due once a year: runs start only with run-now


def _configure(site_dir: Path, url: str, extra: str = "") -> None:
    path = site_dir / CONFIG_NAME
    base = path.read_text().split("\n[sources]")[0]
    path.write_text(base + '\n[sources]\npoll_seconds = 0.2\nlease_seconds = 3\n\n'
                    f'[[sources.jobs]]\nname = "up"\nrepo = "mirror"\nkind = "rsync"\n'
                    f'url = "{url}"\ncron = "{NEVER}"\n' + extra)


def _api(url: str, token: str, method: str, path: str) -> dict[str, object]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        response = c.request(method, path)
        response.raise_for_status()
        return dict(response.json())


def _state(url: str, token: str) -> object:
    return _api(url, token, "GET", "/api/v1/sources/up").get("state")


@pytest.mark.postgres
def test_two_sites_on_one_postgresql_run_a_job_once(tmp_path: Path) -> None:
    upstream = tmp_path / "up"
    write_tree(upstream, {f"f{i}": os.urandom(1000) for i in range(20)})
    with fresh_pg_database() as db, rsync_daemon(tmp_path, upstream) as url:
        env = {"TAIN_DATABASE_URL": db}
        token = create_site(tmp_path / "a", listen="127.0.0.1:1", admin="admin", env=env)
        create_site(tmp_path / "b", listen="127.0.0.1:1", admin="admin", env={})  # own key
        catalog = open_catalog(db)
        catalog.create_repo("mirror", public=True, actor="admin")
        catalog.close()
        sites = [SiteProcess(tmp_path / n, free_port(), env=env) for n in ("a", "b")]
        for proc in sites:
            _configure(proc.site_dir, url, 'bwlimit = "8"\n')  # about 3 s per run
            proc.start()
        try:
            for proc in sites:  # both are woken; both poll every 0.2 s during the run
                _api(proc.url, token, "POST", "/api/v1/sources/up/run")
            wait_for(lambda: _state(sites[1].url, token) == "success", what="the run")
            body = _api(sites[1].url, token, "GET", "/api/v1/sources/up")
            runs = body["runs"]
            assert isinstance(runs, list) and len(runs) == 1, runs
            assert body["repo_head"] == 1
        finally:
            for proc in sites:
                proc.stop()


def _rsync_writing_to(path: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"rsync" in cmdline and str(path).encode() in cmdline:
            found.append(int(pid))
    return found


def test_kill_during_a_run_leaves_no_partial_revision_and_the_next_run_completes(
    tmp_path: Path,
) -> None:
    upstream = tmp_path / "up"
    write_tree(upstream, {"big.iso": os.urandom(2_000_000), "small": b"s"})
    site_dir = tmp_path / "site"
    token = create_site(site_dir, listen="127.0.0.1:1", admin="admin", env={})
    staging = site_dir / "sources" / "up" / "tree"
    with rsync_daemon(tmp_path, upstream) as url:
        _configure(site_dir, url, 'bwlimit = "100"\n')  # 20 s for big.iso
        proc = SiteProcess(site_dir, free_port())
        proc.start()
        try:
            with httpx.Client(base_url=proc.url,
                              headers={"Authorization": f"Bearer {token}"}) as c:
                c.post("/api/v1/repos", json={"name": "mirror"}).raise_for_status()
            _api(proc.url, token, "POST", "/api/v1/sources/up/run")
            wait_for(lambda: any(p.stat().st_size > 0 for p in staging.rglob("*")
                                 if p.is_file()), what="rsync writing")
            assert _state(proc.url, token) == "syncing"
        finally:
            proc.kill()
        catalog = open_catalog(load(site_dir).database_url)
        try:
            assert catalog.get_repo("mirror").head == 0  # nothing partial is visible
            assert catalog.get_source("up").state == "syncing"  # stale, until the lease ends
        finally:
            catalog.close()

        _configure(site_dir, url)  # no bandwidth limit now
        proc = SiteProcess(site_dir, free_port())
        proc.start()
        try:
            _api(proc.url, token, "POST", "/api/v1/sources/up/run")  # waits for the lease
            wait_for(lambda: _state(proc.url, token) == "success", what="the next run")
            runs = _api(proc.url, token, "GET", "/api/v1/sources/up")["runs"]
            assert isinstance(runs, list)
            assert [r["state"] for r in runs] == ["success", "failed"]
            assert "interrupted" in runs[1]["error"]
            assert runs[0]["revision"] == 1
            assert not _rsync_writing_to(staging)  # the killed site's rsync was stopped
        finally:
            proc.stop()
    assert tree_digests(site_dir / "published" / "mirror") == tree_digests(upstream)
