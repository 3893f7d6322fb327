"""A real site on loopback: push, download, then scrape ``/metrics`` with the Prometheus
parser and read the statistics back through the API and ``tain stats``."""

from __future__ import annotations

import json
import random

import httpx
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from tain.cli.main import app
from tests.conftest import BOTH_CATALOGS, RunningSite
from tests.e2e.protocol import push_files

pytestmark = BOTH_CATALOGS


def scrape(client: httpx.Client) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    found = [v for got, v in samples.get(name, []) if all(got.get(k) == w
                                                          for k, w in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def test_metrics_after_a_push_and_downloads(running_site: RunningSite) -> None:
    rng = random.Random(3)
    files = {"a/big.bin": rng.randbytes(300_000), "small.txt": b"hello\n"}
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "pool"}).raise_for_status()
        push_files(c, "pool", files)
        push_files(c, "pool", {"small.txt": b"hello again\n"})
        before = scrape(c)
        assert c.get("/pool/a/big.bin").content == files["a/big.bin"]
        part = c.get("/pool/a/big.bin", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206
        assert c.get("/pool/nope").status_code == 404
        after = scrape(c)

    sent = value(after, "tain_http_sent_bytes_total") - value(before, "tain_http_sent_bytes_total")
    # the big file, the 100-byte range, the 404's JSON body and the first scrape's body
    assert sent > 300_000 + 100
    assert value(after, "tain_download_bytes_total", repo="pool") == 300_000 + 100
    assert value(after, "tain_downloads_total", repo="pool") == 1
    assert value(after, "tain_repo_revision", repo="pool") == 2
    ok = value(after, "tain_http_requests_total", route="/{repo}/{path:path}", method="GET",
               status="200")
    assert ok == 1
    assert value(after, "tain_http_requests_total", route="/{repo}/{path:path}", method="GET",
                 status="404") == 1
    # raw paths never become labels
    assert not any("big.bin" in json.dumps(labels) for labels, _ in
                   after["tain_http_requests_total"])
    assert value(after, "tain_commit_seconds_count", repo="pool") == 2
    assert value(after, "tain_push_request_seconds_count", step="commit") == 2
    assert value(after, "tain_push_received_bytes_total", repo="pool") > 0
    assert value(after, "tain_store_blobs") == 3
    data_dir = str(running_site.site_dir / "blobs")
    assert value(after, "tain_data_dir_free_bytes", path=data_dir) > 0
    assert value(after, "tain_data_dir_available", path=data_dir) == 1


def test_statistics_are_counted_flushed_and_queried(running_site: RunningSite) -> None:
    files = {"x.bin": b"x" * 1000, "y.bin": b"y" * 10, "z.bin": b"z" * 5}
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "pool"}).raise_for_status()
        push_files(c, "pool", files)
        for path, times in (("x.bin", 1), ("y.bin", 3), ("z.bin", 2)):
            for _ in range(times):
                c.get(f"/pool/{path}").raise_for_status()
        assert c.get("/api/v1/stats/downloads").json()["total"]["downloads"] == 0
        assert c.post("/api/v1/stats/flush").json()["rows"] > 0
        downloads = c.get("/api/v1/stats/downloads", params={"days": 1}).json()
        popular = c.get("/api/v1/stats/popular", params={"repo": "pool"}).json()
        pushes = c.get("/api/v1/stats/pushes").json()
        assert c.get("/api/v1/stats/downloads", params={"since": "yesterday"}).status_code == 400
    assert downloads["total"] == {"downloads": 6, "bytes": 1000 + 30 + 10}
    [day] = downloads["days"]
    assert day["repo"] == "pool" and day["site"] == f"127.0.0.1:{running_site.url.rsplit(':')[-1]}"
    assert [p["path"] for p in popular["paths"]] == ["y.bin", "z.bin", "x.bin"]
    assert [p["downloads"] for p in popular["paths"]] == [3, 2, 1]
    [push] = pushes["days"]
    assert push["commits"] == 1 and push["files_changed"] == 3
    assert push["bytes_received"] > 0
    assert sum(b["count"] for b in push["latency_buckets"]) == 1

    runner = CliRunner()
    site = ["--site", running_site.url, "--token", running_site.token]
    shown = runner.invoke(app, ["stats", "popular", *site, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["paths"][0]["path"] == "y.bin"
    table = runner.invoke(app, ["stats", *site])
    assert table.exit_code == 0 and "pool" in table.stdout
    assert "6 downloads" in table.stderr
    table = runner.invoke(app, ["stats", "pushes", *site])
    assert table.exit_code == 0 and "pool" in table.stdout


def test_access_to_metrics_and_stats(running_site: RunningSite) -> None:
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "pool"}).raise_for_status()
        c.post("/api/v1/users", json={"name": "bob"}).raise_for_status()
        bob = c.post("/api/v1/tokens", json={"user": "bob", "name": "t"}).json()["token"]
    with running_site.anonymous() as anon:
        assert anon.get("/metrics").status_code == 200  # loopback
        assert anon.get("/api/v1/stats/downloads").status_code == 401
    with running_site.client(bob) as c:
        assert c.get("/metrics").status_code == 403  # a token, but not an admin's
        assert c.get("/api/v1/stats/downloads").status_code == 403
        assert c.get("/api/v1/stats/popular", params={"repo": "pool"}).status_code == 403
        assert c.get("/api/v1/alerts").status_code == 403
    with running_site.client("tain_bogus") as c:
        assert c.get("/metrics").status_code == 401
    refused = CliRunner().invoke(app, ["alerts", "--site", running_site.url, "--token", bob])
    assert refused.exit_code == 3 and refused.stderr.startswith("error: bob is not a site admin")
    assert "Traceback" not in refused.output
    empty = CliRunner().invoke(app, ["alerts", "--site", running_site.url,
                                     "--token", running_site.token])
    assert empty.exit_code == 0 and "(none)" in empty.stderr
