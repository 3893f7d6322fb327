"""A pull source job as a value: what to mirror from where into which repository, when,
and with which safety limits. The same parser reads ``[[sources.jobs]]`` in tain.toml,
the admin API's request body and the catalog's stored JSON, so all three agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tain.core.paths import check_repo_name
from tain.core.schedule import Schedule, make_schedule
from tain.core.sourcepolicy import DEFAULT_INDEX_PATTERNS, MaxDelete, parse_max_delete
from tain.errors import UsageError

KINDS = ("rsync", "http")
HTTP_MODES = ("index", "sha256sums")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_BWLIMIT = re.compile(r"^\d+(\.\d+)?[KMGkmg]?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class SourceSpec:
    name: str
    repo: str
    kind: str  # "rsync" or "http"
    url: str
    schedule: Schedule = field(default_factory=Schedule)
    max_delete: MaxDelete = field(default_factory=lambda: MaxDelete(percent=10.0))
    index_patterns: tuple[str, ...] = DEFAULT_INDEX_PATTERNS
    timeout_seconds: int = 600
    bwlimit: str | None = None  # rsync's --bwlimit syntax (KiB/s, or 10M)
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    ok_exit_codes: tuple[int, ...] = (0,)
    password_env: str | None = None  # the variable that holds the rsync password
    http_mode: str = "index"
    parallel: int = 4
    on_success: str | None = None
    on_failure: str | None = None
    keep_runs: int = 20

    def to_json(self) -> dict[str, Any]:
        s = self.schedule
        return {
            "name": self.name, "repo": self.repo, "kind": self.kind, "url": self.url,
            "every": s.every_seconds, "cron": s.cron, "jitter": s.jitter_seconds or None,
            "max_delete": None if self.max_delete == MaxDelete() else self.max_delete.describe(),
            "index_patterns": list(self.index_patterns), "timeout": self.timeout_seconds,
            "bwlimit": self.bwlimit, "include": list(self.includes),
            "exclude": list(self.excludes), "ok_exit_codes": list(self.ok_exit_codes),
            "password_env": self.password_env, "http_mode": self.http_mode,
            "parallel": self.parallel, "on_success": self.on_success,
            "on_failure": self.on_failure, "keep_runs": self.keep_runs,
        }


def check_source_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"invalid source name {str(name)[:80]!r}",
                         hint="use 1-63 lowercase letters, digits, '.', '_' or '-'")
    return name


def parse_spec(raw: Mapping[str, Any]) -> SourceSpec:
    """Validate one job; every problem is a one-line ``UsageError`` naming the field."""
    name = check_source_name(_get(raw, "name", str, ""))
    kind = _get(raw, "kind", str, "")
    if kind not in KINDS:
        raise UsageError(f"source {name}: kind must be 'rsync' or 'http', not {kind!r}")
    http_mode = _get(raw, "http_mode", str, "index")
    if http_mode not in HTTP_MODES:
        raise UsageError(f"source {name}: http_mode must be 'index' or 'sha256sums'")
    schedule = make_schedule(
        _seconds(raw.get("every")), _get(raw, "cron", str, "") or None,
        _seconds(raw.get("jitter")) or 0,
    )
    bwlimit = _get(raw, "bwlimit", str, "") or None
    if bwlimit and not _BWLIMIT.match(bwlimit):
        raise UsageError(f"source {name}: bad bwlimit {bwlimit!r}", hint="e.g. 5000 or 10M")
    codes = tuple(_get(raw, "ok_exit_codes", list, [0]))
    if not codes or not all(isinstance(c, int) and 0 <= c < 256 for c in codes):
        raise UsageError(f"source {name}: ok_exit_codes must list exit codes, e.g. [0, 24]")
    spec = SourceSpec(
        name=name, repo=check_repo_name(_get(raw, "repo", str, "")), kind=kind,
        url=check_url(kind, _get(raw, "url", str, ""), http_mode), schedule=schedule,
        max_delete=parse_max_delete(raw.get("max_delete", "10%")),
        index_patterns=_strings(raw, "index_patterns", DEFAULT_INDEX_PATTERNS),
        timeout_seconds=_seconds(raw.get("timeout")) or 600, bwlimit=bwlimit,
        includes=_strings(raw, "include", ()), excludes=_strings(raw, "exclude", ()),
        ok_exit_codes=codes, password_env=_get(raw, "password_env", str, "") or None,
        http_mode=http_mode, parallel=_get(raw, "parallel", int, 4),
        on_success=_get(raw, "on_success", str, "") or None,
        on_failure=_get(raw, "on_failure", str, "") or None,
        keep_runs=_get(raw, "keep_runs", int, 20),
    )
    if not 1 <= spec.parallel <= 64:
        raise UsageError(f"source {name}: parallel must be between 1 and 64")
    if spec.keep_runs < 1:
        raise UsageError(f"source {name}: keep_runs must be at least 1")
    return spec


def check_url(kind: str, url: str, http_mode: str = "index") -> str:
    parts = urlsplit(url)
    schemes = ("rsync",) if kind == "rsync" else ("http", "https")
    if parts.scheme not in schemes or not parts.hostname:
        want = "rsync://HOST/MODULE/PATH" if kind == "rsync" else "https://HOST/PATH/"
        raise UsageError(f"bad {kind} upstream URL {url!r}", hint=f"use {want}")
    if parts.query or parts.fragment:
        raise UsageError(f"upstream URL {url!r} must not have a query or fragment")
    if kind == "rsync" or http_mode == "index":
        return url if url.endswith("/") else url + "/"
    return url


def _seconds(value: Any) -> int | None:
    """3600, "90s", "15m", "6h", "1d", "2w"; None or "" → None."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        text = str(value).strip().lower()
        number, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "s")
        try:
            seconds = int(float(number) * _UNITS[unit])
        except ValueError:
            raise UsageError(f"bad duration {value!r}", hint="use e.g. 90s, 15m, 6h, 1d") from None
    if seconds <= 0:
        raise UsageError(f"duration {value!r} must be positive")
    return seconds


def _strings(raw: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"'{key}' must be a list of non-empty strings")
    return tuple(value)


def _get(raw: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UsageError(f"'{key}' must be of type {kind.__name__}")
    return value


@dataclass(frozen=True)
class SourcesConfig:
    """``[sources]`` in tain.toml: how many jobs run at once, how often the scheduler
    looks for due jobs, how long a lease lasts without renewal, and the jobs."""

    max_concurrent: int = 2
    poll_seconds: float = 5.0
    lease_seconds: int = 120
    jobs: tuple[SourceSpec, ...] = ()


def parse_sources_config(table: Mapping[str, Any]) -> SourcesConfig:
    max_concurrent = _get(table, "max_concurrent", int, 2)
    poll = table.get("poll_seconds", 5.0)
    if not isinstance(poll, int | float) or isinstance(poll, bool):
        raise UsageError("'poll_seconds' must be a number")
    lease = _get(table, "lease_seconds", int, 120)
    if max_concurrent < 1 or poll <= 0 or lease < 2:
        raise UsageError("[sources] max_concurrent >= 1, poll_seconds > 0, lease_seconds >= 2")
    raw_jobs = table.get("jobs", [])
    if not isinstance(raw_jobs, list) or not all(isinstance(j, dict) for j in raw_jobs):
        raise UsageError("[[sources.jobs]] must be tables")
    jobs = tuple(parse_spec(j) for j in raw_jobs)
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise UsageError("[[sources.jobs]]: two jobs have the same name")
    return SourcesConfig(max_concurrent, float(poll), lease, jobs)
