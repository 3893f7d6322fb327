"""``tain serve`` (a real process) runs the health checks in the background when
sites are configured and answers ``/dl/`` with the client's region from GeoIP. On
PostgreSQL (the threaded tests of tests/mirror run on SQLite)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import NewSite, SiteProcess, free_port
from tests.e2e.protocol import push_files
from tests.mirror.mmdb import write_mmdb

pytestmark = pytest.mark.parametrize(
    "catalog_env", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def poll_sites(client: httpx.Client, ready: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        sites = {s["name"]: s for s in client.get("/api/v1/sites").json()["sites"]}
        if ready(sites):
            return sites
        if time.monotonic() > deadline:
            raise AssertionError(f"health checks did not get there: {sites}")
        time.sleep(0.1)


def test_serve_checks_sites_and_redirects_by_geoip(new_site: NewSite) -> None:
    write_mmdb(new_site.site_dir / "geo.mmdb", {"10.9.0.0/16": {"country": {"iso_code": "DE"}}})
    down = f"http://127.0.0.1:{free_port()}"
    with (new_site.site_dir / "tain.toml").open("a") as f:
        f.write(f"""
[redirector]
enabled = true
name = "main"
region = "eu"
primary = true
check_interval = "1s"
trusted_proxies = ["127.0.0.1/32"]
geoip_db = "geo.mmdb"

[redirector.geoip_regions]
DE = "eu"

[[sites]]
name = "gone"
url = "{down}"
region = "us"
""")
    proc = SiteProcess(new_site.site_dir, new_site.port, env=new_site.env)
    proc.start()
    try:
        headers = {"Authorization": f"Bearer {new_site.token}"}
        with httpx.Client(base_url=proc.url, headers=headers, timeout=30) as c:
            c.post("/api/v1/repos", json={"name": "pub", "public": True}).raise_for_status()
            push_files(c, "pub", {"f.txt": b"hello"})
            sites = poll_sites(c, lambda s: any(r["repo"] == "pub" and r["in_rotation"]
                                                for r in s["main"]["repos"]))
            assert sites["main"]["up"] and sites["main"]["repos"][0]["revision"] == 1
            assert sites["gone"]["up"] is False and sites["gone"]["attention"]
            status = c.get("/api/v1/status").json()
            assert [s["name"] for s in status["sites"]] == ["main", "gone"]

            listed = c.get("/dl/pub/f.txt", params={"mirrorlist": "", "format": "json"},
                           headers={"X-Forwarded-For": "10.9.1.1"}).json()
            assert listed["client_region"] == "eu"
            assert [s["name"] for s in listed["sites"]] == ["main"]
            answer = c.get("/dl/pub/f.txt", headers={"X-Forwarded-For": "10.9.1.1"})
            assert answer.status_code == 302
            assert answer.headers["location"] == f"{proc.url}/pub/f.txt"
    finally:
        proc.stop()
