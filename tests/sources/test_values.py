"""Pure parts of pull sources, with plain values: schedules with an injected "now",
deletion limits, index patterns, job specs, listings (nginx, Apache, JSON),
SHA256SUMS, rsync's command line and statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tain.core.schedule import Schedule, make_schedule, next_run
from tain.core.sourcepolicy import IndexMatcher, MaxDelete, deletion_problem, parse_max_delete
from tain.core.sourcespec import parse_sources_config, parse_spec
from tain.errors import RemoteError, UsageError
from tain.sources.listing import Listed, parse_listing, parse_sha256sums
from tain.sources.rsync import parse_stats, rsync_command


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_interval_schedule_counts_from_last_start_never_in_the_past() -> None:
    hourly = make_schedule(3600, None)
    now = ts("2026-01-01T10:00:00")
    assert next_run(hourly, now=now, last_start=None) == now  # a new job runs at once
    assert next_run(hourly, now=now, last_start=now - 600) == now + 3000
    assert next_run(hourly, now=now, last_start=now - 7200) == now  # overdue: now
    jittered = make_schedule(3600, None, 600)
    assert next_run(jittered, now=now, last_start=now, draw=0.5) == now + 3600 + 300
    assert next_run(Schedule(), now=now, last_start=None) is None  # manual only


def test_cron_schedule_fires_at_the_next_matching_minute_utc() -> None:
    every4h = make_schedule(None, "0 */4 * * *")
    assert next_run(every4h, now=ts("2026-01-01T09:59:00"), last_start=None) == ts(
        "2026-01-01T12:00:00")
    assert next_run(every4h, now=ts("2026-01-01T12:00:00"), last_start=None) == ts(
        "2026-01-01T16:00:00")
    nightly = make_schedule(None, "30 2 * * *", 60)
    assert next_run(nightly, now=ts("2026-01-01T03:00:00"), last_start=None, draw=0.25) == ts(
        "2026-01-02T02:30:15")


@pytest.mark.parametrize("every, cron", [(60, "* * * * *"), (None, "61 * * * *"),
                                         (None, "* * *"), (-5, None)])
def test_bad_schedules_are_refused(every: int | None, cron: str | None) -> None:
    with pytest.raises(UsageError):
        make_schedule(every, cron)


def test_deletion_limits() -> None:
    assert parse_max_delete("10%") == MaxDelete(percent=10.0)
    assert parse_max_delete(500) == MaxDelete(count=500)
    assert parse_max_delete("none") == MaxDelete()
    for bad in ("ten", "-1", "150%"):
        with pytest.raises(UsageError):
            parse_max_delete(bad)
    ten = MaxDelete(percent=10.0)
    assert deletion_problem(100, 95, 5, ten) is None
    assert "more than max-delete 10%" in (deletion_problem(100, 85, 15, ten) or "")
    assert "lists no files" in (deletion_problem(100, 0, 100, MaxDelete()) or "")
    assert "lists no files" in (deletion_problem(0, 0, 0, MaxDelete()) or "")
    assert deletion_problem(100, 1, 99, MaxDelete()) is None


def test_index_patterns_match_names_anywhere_and_path_suffixes() -> None:
    is_index = IndexMatcher(("Release", "Packages*", "repodata/**", "*.db"))
    for path in ("dists/stable/Release", "dists/s/main/binary-amd64/Packages.xz",
                 "os/x86_64/repodata/repomd.xml", "core/os/core.db"):
        assert is_index(path), path
    for path in ("pool/Release.deb/x", "pool/a.deb", "repodata", "xrepodata/a", "a.dbx"):
        assert not is_index(path), path


def test_job_specs_validate_every_field() -> None:
    spec = parse_spec({"name": "debian", "repo": "debian", "kind": "rsync",
                       "url": "rsync://ftp.example.org/debian", "cron": "0 */4 * * *",
                       "ok_exit_codes": [0, 24], "max_delete": "5%"})
    assert spec.url == "rsync://ftp.example.org/debian/" and spec.ok_exit_codes == (0, 24)
    assert parse_spec(spec.to_json()) == spec  # the stored form reads back the same
    base = {"name": "x", "repo": "r", "kind": "http", "url": "https://h/p/"}
    for change, words in [
        ({"url": "ftp://h/p/"}, "bad http upstream URL"),
        ({"kind": "rsync", "url": "https://h/p/"}, "bad rsync upstream URL"),
        ({"url": "https://h/p/?q=1"}, "query"),
        ({"name": "Bad Name"}, "invalid source name"),
        ({"repo": "BAD"}, "invalid repository name"),
        ({"cron": "every day"}, "bad cron"),
        ({"every": "1h", "cron": "* * * * *"}, "not both"),
        ({"every": "soon"}, "bad duration"),
        ({"kind": "ftp"}, "kind must be"),
        ({"ok_exit_codes": ["x"]}, "ok_exit_codes"),
        ({"parallel": 0}, "parallel"),
        ({"bwlimit": "fast"}, "bwlimit"),
    ]:
        with pytest.raises(UsageError, match=words):
            parse_spec({**base, **change})


def test_sources_config_section() -> None:
    config = parse_sources_config({"max_concurrent": 3, "poll_seconds": 0.5, "jobs": [
        {"name": "a", "repo": "r", "kind": "http", "url": "https://h/a/", "every": "1h"}]})
    assert config.max_concurrent == 3 and config.jobs[0].schedule.every_seconds == 3600
    with pytest.raises(UsageError, match="same name"):
        parse_sources_config({"jobs": [config.jobs[0].to_json()] * 2})
    with pytest.raises(UsageError):
        parse_sources_config({"max_concurrent": 0})


NGINX_HTML = """<html><head><title>Index of /pub/</title></head><body>
<h1>Index of /pub/</h1><hr><pre><a href="../">../</a>
<a href="dists/">dists/</a>                                             25-Nov-2026 00:00       -
<a href="space%20name.txt">space name.txt</a>                        25-Nov-2026 00:00      14
<a href="Release">Release</a>                                        25-Nov-2026 00:00      13
</pre><hr></body></html>"""

APACHE_HTML = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /mirror/centos</title></head><body>
<h1>Index of /mirror/centos</h1>
<table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>
<th><a href="?C=S;O=A">Size</a></th></tr>
<tr><td><a href="/mirror/">Parent Directory</a></td><td>&nbsp;</td></tr>
<tr><td><a href="8/">8/</a></td><td align="right">2026-11-25 00:00  </td></tr>
<tr><td><a href="RPM-GPG-KEY">RPM-GPG-KEY</a></td><td align="right">1.7K</td></tr>
<tr><td><a href="https://elsewhere.example/evil">evil</a></td></tr>
<tr><td><a href="/etc/passwd">passwd</a></td></tr>
<tr><td><a href="a%2Fb">slash</a></td></tr>
<tr><td><a href="x#frag">frag</a></td></tr>
</table><address>Apache/2.4 Server</address></body></html>"""


def test_nginx_and_apache_listings_give_only_direct_children() -> None:
    assert parse_listing(NGINX_HTML, "text/html", "http://h/pub/") == [
        Listed("Release", False), Listed("dists", True), Listed("space name.txt", False)]
    assert parse_listing(APACHE_HTML, "text/html; charset=UTF-8",
                         "https://m.example/mirror/centos/") == [
        Listed("8", True), Listed("RPM-GPG-KEY", False)]


def test_json_listing_and_sha256sums() -> None:
    body = ('[{"name":"dists","type":"directory","mtime":"x"},'
            '{"name":"a.iso","type":"file","size":3},{"name":"../x","type":"file"}]')
    assert parse_listing(body, "application/json", "http://h/json/") == [
        Listed("a.iso", False), Listed("dists", True)]
    with pytest.raises(RemoteError):
        parse_listing("{not json", "application/json", "http://h/")
    digest = "ab" * 32
    text = f"{digest}  a.iso\n{digest.upper()} *./sub/b.img\n{digest}  ../escape\nnoise\n"
    assert parse_sha256sums(text, "dir/") == {"dir/a.iso": digest, "dir/sub/b.img": digest}


def test_rsync_command_and_stats() -> None:
    spec = parse_spec({"name": "d", "repo": "d", "kind": "rsync", "url": "rsync://h/m",
                       "bwlimit": "10M", "exclude": ["*.iso"], "timeout": "5m"})
    args = rsync_command(spec, Path("/s/tree"), max_delete=7)
    assert args[0] == "/usr/bin/rsync" and args[-2:] == ["rsync://h/m/", "/s/tree/"]
    for option in ("-rlt", "--delete-delay", "--delay-updates", "--safe-links",
                   "--timeout=300", "--bwlimit=10M", "--max-delete=7", "--exclude=*.iso"):
        assert option in args
    stats = parse_stats("Number of regular files transferred: 1,234\n"
                        "Total transferred file size: 5,678,901 bytes\n"
                        "Number of deleted files: 3 (reg: 3)\n")
    assert (stats.files, stats.bytes, stats.deleted) == (1234, 5678901, 3)
