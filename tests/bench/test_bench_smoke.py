"""The pure parts of the benchmark suite (bench/): workload generation, percentile math,
output parsing and the ratio table. The suite itself runs with ``python -m bench``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from bench.load import parse_h2load
from bench.peers.rsync import parse_stats
from bench.report import ratio_rows, render_ratio_table, render_summary
from bench.results import Record
from bench.scale import QUICK
from bench.stats import percentile, ratio, summarize
from bench.targets import render_targets, target_rows
from bench.treesum import compare, digest_tree
from bench.workloads import (
    apply_edits,
    content,
    insert_at_start,
    plan_burst,
    plan_edits,
    plan_tree,
    write_files,
)


def test_plan_tree_is_deterministic_and_follows_the_scale() -> None:
    first, again, other = plan_tree(QUICK, 6), plan_tree(QUICK, 6), plan_tree(QUICK, 7)
    assert first == again
    assert first != other
    small = [s for s in first if not s.path.startswith("large/")]
    assert len(small) == QUICK.small_files
    assert all(QUICK.small_min <= s.size <= QUICK.small_max for s in small)
    assert [s.size for s in first if s.path.startswith("large/")] == list(QUICK.large_sizes)
    renamed = [s for s in first if s.path.startswith("d01/")]
    assert len(renamed) == QUICK.rename_files
    assert len({s.seed for s in first}) == len(first)


def test_content_is_seeded_and_exactly_sized() -> None:
    one = b"".join(content(42, 3 * 1024 * 1024 + 5))
    assert len(one) == 3 * 1024 * 1024 + 5
    assert one == b"".join(content(42, 3 * 1024 * 1024 + 5))
    assert one[:1000] != b"".join(content(43, 1000))


def test_written_trees_are_identical_for_one_seed(tmp_path: Path) -> None:
    specs = plan_tree(QUICK, 1)[:40]
    write_files(tmp_path / "a", specs)
    write_files(tmp_path / "b", specs)
    a, b = digest_tree(tmp_path / "a"), digest_tree(tmp_path / "b")
    assert compare(a, b).ok and len(a) == 40
    edits = plan_edits(specs, 0.1, 3)
    assert edits == plan_edits(specs, 0.1, 3) and len(edits) == 4
    apply_edits(tmp_path / "b", edits)
    changed = compare(a, digest_tree(tmp_path / "b"))
    assert sorted(changed.different) == sorted(e.path for e in edits)
    assert "4 different" in changed.summary()


def test_insert_at_start_shifts_the_content(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    insert_at_start(path)
    assert path.read_bytes() == b"!abc"


def test_burst_plan_is_deterministic() -> None:
    assert plan_burst(500, 9) == plan_burst(500, 9)
    assert len({s.path.rsplit("/", 1)[0] for s in plan_burst(500, 9)}) == 2


def test_percentiles_interpolate_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile([7.0], 99) == 7.0
    summary = summarize(list(range(1, 101)))
    assert summary["p50"] == 50.5 and summary["max"] == 100 and summary["n"] == 100
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_is_none_when_it_means_nothing() -> None:
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 1.0) is None


def _records() -> list[Record]:
    return [
        Record("W1", "initial sync", "tain push", metrics={"wall_s": 6.0, "cpu_s": 2.0}),
        Record("W1", "initial sync", "rsync", metrics={"wall_s": 2.0, "cpu_s": 4.0}),
        Record("W1", "initial sync", "syncthing", status="failed", reason="wrong copy"),
        Record("W6", "burst", "tain agent", group="watch", metrics={"p50_s": 1.0}),
        Record("W6", "burst", "lsyncd", "delay 1 s", group="watch", metrics={"p50_s": 4.0}),
        Record("W6", "burst", "rsync", "once", group="once", metrics={"p50_s": 0.5}),
        Record("W7", "large file download", "tain serve",
               metrics={"throughput_mib_s": 500.0}),
        Record("W7", "large file download", "nginx", metrics={"throughput_mib_s": 1000.0}),
    ]


def test_ratio_rows_pair_tain_with_each_peer_of_its_group() -> None:
    rows = ratio_rows(_records())
    by = {(r.workload, r.peer, r.metric): r for r in rows}
    assert by[("W1", "rsync", "wall time (s)")].ratio == "3.00"
    assert by[("W1", "rsync", "CPU, client + daemons (s)")].ratio == "0.50"
    assert by[("W1", "syncthing", "-")].better == "syncthing failed"
    assert by[("W6", "lsyncd (delay 1 s)", "latency p50 (s)")].ratio == "0.25"
    assert not any(r.peer.startswith("rsync (once)") for r in rows)
    assert by[("W7", "nginx", "throughput (MiB/s)")].ratio == "0.50"
    table = render_ratio_table(rows)
    assert "| W1 | initial sync | wall time (s) | tain push | rsync | 6.00 | 2.00 | 3.00 |" in table


def test_summary_table_has_a_column_per_metric() -> None:
    text = render_summary(_records())
    assert "**One-shot syncs (W1-W5)**" in text
    assert "| W1 | initial sync | tain push | rsync | 3.00 | 0.50 | n/a | n/a | n/a |" in text
    assert "| W1 | initial sync | tain push | syncthing | syncthing failed |" in text
    assert "throughput ↑" in text


def test_tool_outputs_are_parsed() -> None:
    stats = parse_stats("Literal data: 1,024 bytes\nMatched data: 0 bytes\n"
                        "Total bytes sent: 2,048\nTotal bytes received: 35\n")
    assert (stats.sent, stats.received, stats.literal) == (2048, 35, 1024)
    out = ("finished in 1.50s, 6666.67 req/s, 10MB/s\n"
           "requests: 10000 total, 10000 started, 10000 done, 10000 succeeded, 0 failed, "
           "0 errored, 0 timeout\nstatus codes: 10000 2xx, 0 3xx, 0 4xx, 0 5xx\n")
    summary = parse_h2load(out, ["1\t200\t1500", "2\t200\t2500"])
    assert summary.requests_per_s == pytest.approx(6666.67, rel=1e-3)
    assert summary.latencies_us == [1500, 2500] and summary.non_2xx == 0


def test_digests_skip_syncthing_markers(tmp_path: Path) -> None:
    (tmp_path / ".stfolder").mkdir()
    (tmp_path / ".stfolder" / "x").write_bytes(b"1")
    (tmp_path / "a").write_bytes(b"hello")
    sums = digest_tree(tmp_path)
    assert sums == {"a": (5, hashlib.sha256(b"hello").hexdigest())}


def test_targets_are_judged_from_the_records() -> None:
    records = [
        Record("T1", "initial sync, repeated", "tain push", metrics={"wall_s": 3.0}),
        Record("T1", "initial sync, repeated", "rsync", metrics={"wall_s": 2.0}),
        Record("W6", "burst", "tain agent", group="watch", metrics={"p50_s": 0.8, "p99_s": 3.5}),
        Record("W6", "burst", "lsyncd", "delay 1 s", group="watch",
               metrics={"p50_s": 1.2, "p99_s": 1.3}),
        Record("T3", "agent", "tain agent", metrics={
            "files": 1_000_000, "peak_rss_mib": 70.0, "peak_rss_mib_per_1000_files": 0.07}),
    ]
    rows = {r.target.split(",")[0].split(" <")[0]: r for r in target_rows(records)}
    assert rows["initial push"].verdict == "missed"
    assert rows["initial push"].measured.startswith("1.50x")
    assert rows["change to commit p50"].verdict == "met"
    assert rows["change to commit p99"].verdict == "missed"
    assert "lsyncd (delay 1 s) p50 1.20 s" in rows["change to commit p50"].reference
    assert rows["agent RSS"].verdict == "met"
    small = [r for r in records if r.workload != "T3"] + [Record(
        "T3", "agent", "tain agent", metrics={
            "files": 20_000, "peak_rss_mib": 50.0, "peak_rss_mib_per_1000_files": 2.5})]
    assert [r.verdict for r in target_rows(small)][-1] == "n/a at this size"
    assert "| initial push" in render_targets(records)


def test_targets_fall_back_to_the_single_w1_run_or_say_not_measured() -> None:
    w1 = [Record("W1", "initial sync", "tain push", metrics={"wall_s": 1.0}),
          Record("W1", "initial sync", "rsync", metrics={"wall_s": 2.0})]
    first = target_rows(w1)[0]
    assert first.verdict == "met" and "one run" in first.measured
    assert {r.verdict for r in target_rows([])} == {"n/a"}
