"""Alert rules and the alert life cycle as pure code: plain facts in, alerts out."""

from __future__ import annotations

from tain.core.alerts import (
    AgentFact,
    Alert,
    AlertRules,
    AuditFact,
    DiskFact,
    Facts,
    JobFact,
    ScrubFact,
    SiteFact,
    evaluate,
)
from tain.core.alertstate import OpenAlert, plan
from tain.core.histogram import LATENCY_BUCKETS, Histogram, bucket_index, day_of

NOW = 1_800_000_000.0
RULES = AlertRules()


def keys(facts: Facts, rules: AlertRules = RULES) -> list[str]:
    return [a.key for a in evaluate(facts, rules)]


def test_healthy_facts_raise_nothing() -> None:
    facts = Facts(
        NOW,
        sites=(SiteFact("eu", True, lag_revisions=2, lag_seconds=60),),
        agents=(AgentFact("a1", "www", "src", NOW - 30, 5),),
        disks=(DiskFact("/d1", True, 50 * 2**30, 100 * 2**30),),
        jobs=(JobFact("backup", True, NOW - 100),),
        scrub=ScrubFact(NOW - 10, 0, 3),
        audit=AuditFact(True),
    )
    assert evaluate(facts, RULES) == []


def test_site_down_only_after_the_threshold_and_stale_by_revisions_or_seconds() -> None:
    recent = SiteFact("eu", False, "connection refused", down_since=NOW - 60)
    old = SiteFact("us", False, "HTTP 503", down_since=NOW - 301)
    behind = SiteFact("ap", True, lag_revisions=11, lag_seconds=10)
    late = SiteFact("sa", True, lag_revisions=0, lag_seconds=3601)
    [down, *stale] = evaluate(Facts(NOW, sites=(recent, old, behind, late)), RULES)
    assert down.key == "site_down:us" and "HTTP 503" in down.message
    assert [a.key for a in stale] == ["site_stale:ap", "site_stale:sa"]
    assert "11 revisions" in stale[0].message and "3601 s" in stale[1].message
    # a fact without a known start counts as down since now: threshold 0 fires at once
    assert keys(Facts(NOW, sites=(SiteFact("x", False),)), AlertRules(site_down_after=0)) == [
        "site_down:x"]
    off = AlertRules(site_down_after=None, site_stale_revisions=None, site_stale_seconds=None)
    assert keys(Facts(NOW, sites=(old, behind, late)), off) == []


def test_agents_silent_or_with_a_long_or_growing_queue() -> None:
    silent = AgentFact("a1", "www", "h1", NOW - 601, 0)
    long = AgentFact("a2", "www", "h2", NOW, 10_001)
    growing = AgentFact("a3", "www", "h3", NOW, 50, queue_growing_checks=10)
    fine = AgentFact("a4", "www", "h4", NOW - 599, 10_000, queue_growing_checks=9)
    alerts = evaluate(Facts(NOW, agents=(silent, long, growing, fine)), RULES)
    assert [a.key for a in alerts] == ["agent_queue:a2", "agent_queue:a3", "agent_silent:a1"]
    assert "queue long" in alerts[0].message and "queue growing" in alerts[1].message
    assert "silent for 601 s" in alerts[2].message
    tuned = AlertRules(agent_silent_after=1000, agent_queue_above=None,
                       agent_queue_growing_checks=None)
    assert keys(Facts(NOW, agents=(silent, long, growing)), tuned) == []


def test_disks_scrub_jobs_and_audit() -> None:
    gib = 2**30
    facts = Facts(
        NOW,
        disks=(DiskFact("/low", True, 9 * gib, 100 * gib), DiskFact("/ok", True, 20 * gib,
                                                                   100 * gib),
               DiskFact("/gone", False)),
        jobs=(JobFact("backup", False, NOW, "disk full"), JobFact("scrub", True, NOW)),
        scrub=ScrubFact(NOW, unrepaired=2),
        audit=AuditFact(False, ("entry 7 was edited",)),
    )
    alerts = {a.key: a for a in evaluate(facts, RULES)}
    assert sorted(alerts) == ["audit_broken:audit", "disk_free:/low", "disk_unavailable:/gone",
                              "job_failed:backup", "scrub_corruption:store"]
    assert "9.0 GiB free (9.0%)" in alerts["disk_free:/low"].message
    assert "disk full" in alerts["job_failed:backup"].message
    assert "entry 7 was edited" in alerts["audit_broken:audit"].message
    by_bytes = AlertRules(disk_free_below_percent=None, disk_free_below_bytes=30 * gib,
                          scrub_corruption=False, job_failed=False, audit_broken=False)
    assert keys(facts, by_bytes) == ["disk_free:/low", "disk_free:/ok", "disk_unavailable:/gone"]


def opened(alert: Alert, *, last_sent: float | None, id: int = 1) -> OpenAlert:
    return OpenAlert(id, alert.key, alert.rule, alert.subject, alert.message, alert.severity,
                     NOW - 1000, last_sent)


def test_the_life_of_an_alert_fire_once_repeat_resolve() -> None:
    a = Alert("site_down", "eu", "site eu is down")
    b = Alert("disk_free", "/d", "low")
    [step] = plan([], [a], NOW, 3600)
    assert (step.kind, step.alert) == ("fire", a)
    # open and sent a minute ago: only updated; an hour later: repeated
    assert [s.kind for s in plan([opened(a, last_sent=NOW - 60)], [a], NOW, 3600)] == ["update"]
    assert [s.kind for s in plan([opened(a, last_sent=NOW - 3600)], [a], NOW, 3600)] == [
        "repeat"]
    assert [s.kind for s in plan([opened(a, last_sent=NOW - 10**6)], [a], NOW, None)] == [
        "update"]  # repeating turned off
    # never delivered: try again at the next check
    assert [s.kind for s in plan([opened(a, last_sent=None)], [a], NOW, None)] == ["repeat"]
    steps = plan([opened(a, last_sent=NOW)], [b], NOW, 3600)
    assert [(s.kind, s.alert.key if s.alert else s.current and s.current.key) for s in steps] == [
        ("fire", "disk_free:/d"), ("resolve", "site_down:eu")]


def test_histogram_buckets_and_days() -> None:
    h = Histogram()
    for seconds in (0.001, 0.005, 0.3, 100.0):
        h.observe(seconds)
    assert h.count == 4 and h.maximum == 100.0 and abs(h.total - 100.306) < 1e-9
    assert bucket_index(0.005) == 0 and bucket_index(0.0051) == 1
    assert bucket_index(1000) == len(LATENCY_BUCKETS)
    cumulative = dict(h.cumulative())
    assert cumulative["0.005"] == 2 and cumulative["0.5"] == 3 and cumulative["+Inf"] == 4
    assert day_of(0) == "1970-01-01" and day_of(86399.9) == "1970-01-01"
    assert day_of(86400) == "1970-01-02"
