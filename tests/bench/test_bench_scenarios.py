"""The W8-W10 scenarios of ``python -m bench`` run end to end at a tiny scale: real sites
(in threads), a real nginx, h2load, rsync daemons and rsync. They check that each
scenario measures what it says and records it; the figures themselves are not judged."""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bench.cases_mirror import MirrorCases
from bench.cases_redirector import RedirectorCases, check_redirect
from bench.cases_source import SourceCases
from bench.context import Context
from bench.load import parse_h2load
from bench.peers.rsync_poll import RsyncPollMirror
from bench.procs import BenchError, free_port
from bench.results import Record, Results
from bench.scale import QUICK

from tests.bench.conftest import ThreadSites

# FastAPI's console form models warn once, in whichever thread builds them first.
pytestmark = pytest.mark.filterwarnings(
    "ignore::pydantic.warnings.UnsupportedFieldAttributeWarning")

TINY = dataclasses.replace(QUICK, name="tiny", redirect_requests=300, download_repeats=1,
                           small_request_paths=20,
                           concurrency=8, mirror_small_rounds=2, mirror_bulk_files=20,
                           mirror_bulk_rounds=1, source_files=60)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(TINY, 6, tmp_path, Results(tmp_path / "results.json"))


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[ThreadSites]:
    sites = ThreadSites(tmp_path / "sites")
    try:
        yield sites
    finally:
        sites.stop_all()


def by_tool(records: list[Record], workload: str) -> dict[tuple[str, str], Record]:
    return {(r.case, r.tool): r for r in records if r.workload == workload}


def test_redirector_scenario_counts_only_302s(ctx: Context, launcher: ThreadSites) -> None:
    RedirectorCases(ctx, launcher).run()
    records = by_tool(ctx.results.records, "W8")
    assert {tool for _, tool in records} == {"tain redirector", "nginx"}
    for record in records.values():
        assert record.status == "ok", record.reason
        assert record.metrics["requests"] == TINY.redirect_requests
        assert record.metrics["requests_per_s"] > 0
        assert record.metrics["p50_ms"] <= record.metrics["p99_ms"]
    assert "[[sites]]" in ctx.results.configs["tain redirector"]
    assert "return 302" in ctx.results.configs["nginx (return 302)"]


def test_a_redirect_check_refuses_what_is_not_a_working_302(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="ConnectError"):
        check_redirect(f"http://127.0.0.1:{free_port()}", "/dl/x/y", expected="0" * 64)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with pytest.raises(BenchError, match="answered 404, not 302"):
                check_redirect(f"http://127.0.0.1:{server.server_port}", "/dl/x/y",
                               expected="0" * 64)
        finally:
            server.shutdown()


def test_mirror_scenario_times_both_mirrors_every_round(ctx: Context,
                                                        launcher: ThreadSites) -> None:
    # a short long-poll only so that the primary stops at once at the end
    MirrorCases(ctx, launcher, 'long_poll = "2s"\n', poll_interval=0.2).run()
    records = by_tool(ctx.results.records, "W9")
    small, bulk = "small change, 2 rounds", "20 new files, 1 rounds"
    assert set(records) == {(c, t) for c in (small, bulk)
                            for t in ("tain mirror", "rsync poll loop")}
    for (case, _), record in records.items():
        assert record.status == "ok", record.reason
        assert len(record.details["latencies_s"]) == (2 if case == small else 1)
        assert record.metrics["p50_s"] <= record.metrics["max_s"]


def test_the_poll_mirror_reports_a_failing_rsync(tmp_path: Path) -> None:
    poll = RsyncPollMirror(f"rsync://127.0.0.1:{free_port()}/nothing/", tmp_path / "m", 0.05)
    poll.start()
    try:
        poll.expect(lambda: True)
        with pytest.raises(BenchError, match="rsync poll loop: exit"):
            poll.arrival(timeout=30)
    finally:
        poll.stop()


def test_source_scenario_copies_the_upstream_then_changes_nothing(
        ctx: Context, launcher: ThreadSites) -> None:
    SourceCases(ctx, launcher).run()
    records = by_tool(ctx.results.records, "W10")
    initial, noop = "initial sync, 60 files", "re-sync, nothing changed"
    assert set(records) == {(c, t) for c in (initial, noop)
                            for t in ("tain source", "rsync -rlt")}
    assert all(r.status == "ok" for r in records.values()), [r.reason for r in records.values()]
    first = records[(initial, "tain source")].details["run"]
    again = records[(noop, "tain source")].details["run"]
    assert (first["files"], first["revision"]) == (60, 1)
    assert (again["files"], again["revision"]) == (0, None)
    assert records[(initial, "rsync -rlt")].metrics["files_per_s"] > 0


def test_h2load_3xx_answers_are_counted_as_redirects() -> None:
    out = ("finished in 300ms, 1000.00 req/s, 1MB/s\n"
           "requests: 300 total, 300 started, 300 done, 300 succeeded, 0 failed, 0 errored, "
           "0 timeout\nstatus codes: 0 2xx, 299 3xx, 1 4xx, 0 5xx\n")
    summary = parse_h2load(out, [])
    assert (summary.redirects, summary.non_2xx) == (299, 300)
