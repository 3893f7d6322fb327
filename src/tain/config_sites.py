"""The ``[[sites]]`` list and the ``[redirector]`` section of ``tain.toml``.

A site that lists other sites checks their health (``tain serve`` runs the checks in a
background thread) and, with ``[redirector] enabled = true``, answers ``/dl/...`` with
a redirect to the best of them. The site itself is one of the sites: its name, region,
capacity and whether it is the primary come from ``[redirector]``, its URL from
``[redirector] url`` or ``[server] public_url``. Exactly one site is the primary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tain.config import _get, _table, parse_duration, parse_size
from tain.core.health import Thresholds
from tain.core.regions import Network, RegionMap, parse_networks
from tain.errors import UsageError

_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """One site of the network as configured."""

    name: str
    url: str
    region: str = ""
    capacity: float = 100.0
    primary: bool = False
    token: str | None = None  # read token for its private repositories
    is_self: bool = False
    repos: tuple[str, ...] = ()  # the repositories it carries; empty: every one

    def carries(self, repo: str) -> bool:
        return not self.repos or repo in self.repos


@dataclass(frozen=True)
class RedirectorConfig:
    enabled: bool = False
    self_site: SiteSpec | None = None
    sites: tuple[SiteSpec, ...] = ()  # the other sites
    check_interval_seconds: int = 30
    thresholds: Thresholds = field(default_factory=Thresholds)
    sample_files: int = 1
    max_sample_bytes: int = 1024 * 1024
    timeout_seconds: float = 10.0
    repos: tuple[str, ...] = ()  # empty: every repository the primary lists
    regions: RegionMap = field(default_factory=RegionMap)
    neighbours: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    geoip_db: Path | None = None
    geoip_regions: Mapping[str, str] = field(default_factory=dict)
    trusted_proxies: tuple[Network, ...] = ()
    popular_per_minute: float = 60.0
    history_days: float = 7.0

    @property
    def active(self) -> bool:
        """Whether health checks run: other sites are listed, or the redirector is on."""
        return self.self_site is not None

    @property
    def all_sites(self) -> tuple[SiteSpec, ...]:
        return ((self.self_site,) if self.self_site else ()) + self.sites

    @property
    def primary(self) -> SiteSpec | None:
        return next((s for s in self.all_sites if s.primary), None)


def parse_redirector(raw: Mapping[str, Any], site_dir: Path, self_url: str) -> RedirectorConfig:
    table = _table(raw, "redirector")
    entries = raw.get("sites", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError("[[sites]] in tain.toml must be a list of tables")
    enabled = _get(table, "enabled", bool, False)
    if not entries and not enabled:
        return RedirectorConfig()
    self_site = SiteSpec(
        name=_name(_get(table, "name", str, "self")),
        url=_url(_get(table, "url", str, "") or self_url, "[redirector] url"),
        region=_get(table, "region", str, ""),
        capacity=_capacity(_get(table, "capacity", (int, float), 100), "[redirector]"),
        primary=_get(table, "primary", bool, False), is_self=True,
    )
    sites = tuple(_site(e) for e in entries)
    _check_names_and_primary((self_site, *sites))
    geoip = _get(table, "geoip_db", str, "")
    return RedirectorConfig(
        enabled=enabled, self_site=self_site, sites=sites,
        check_interval_seconds=parse_duration(_get(table, "check_interval", str, "30s")),
        thresholds=_thresholds(table),
        sample_files=_at_least(_get(table, "sample_files", int, 1), 0, "sample_files"),
        max_sample_bytes=parse_size(_get(table, "max_sample_bytes", str, "1M")),
        timeout_seconds=float(parse_duration(_get(table, "timeout", str, "10s"))),
        repos=tuple(_get(table, "repos", list, [])),
        regions=RegionMap.parse(_str_map(_table(table, "regions"), "regions")),
        neighbours={k: tuple(v) for k, v in _list_map(_table(table, "neighbours")).items()},
        geoip_db=(Path(geoip) if Path(geoip).is_absolute() else site_dir / geoip)
        if geoip else None,
        geoip_regions=_str_map(_table(table, "geoip_regions"), "geoip_regions"),
        trusted_proxies=parse_networks(_get(table, "trusted_proxies", list, [])),
        popular_per_minute=float(_get(table, "popular_per_minute", (int, float), 60)),
        history_days=float(_get(table, "history_days", (int, float), 7)),
    )


def _site(entry: Mapping[str, Any]) -> SiteSpec:
    name = _name(_get(entry, "name", str, ""))
    return SiteSpec(
        name=name,
        url=_url(_get(entry, "url", str, ""), f"[[sites]] {name}: url"),
        region=_get(entry, "region", str, ""),
        capacity=_capacity(_get(entry, "capacity", (int, float), 100), f"[[sites]] {name}"),
        primary=_get(entry, "primary", bool, False),
        token=_get(entry, "token", str, "") or None,
        repos=tuple(_get(entry, "repos", list, [])),
    )


def _thresholds(table: Mapping[str, Any]) -> Thresholds:
    return Thresholds(
        max_lag_revisions=_at_least(_get(table, "stale_revisions", int, 20), 0,
                                    "stale_revisions"),
        max_lag_seconds=float(parse_duration(_get(table, "stale_after", str, "10m"))),
        fail_after=_at_least(_get(table, "fail_after", int, 2), 1, "fail_after"),
        recover_after=_at_least(_get(table, "recover_after", int, 2), 1, "recover_after"),
    )


def _check_names_and_primary(sites: tuple[SiteSpec, ...]) -> None:
    seen: set[str] = set()
    for site in sites:
        if site.name in seen:
            raise UsageError(f"two sites are named {site.name!r}",
                             hint="[redirector] name is this site's own name")
        seen.add(site.name)
    primaries = [s.name for s in sites if s.primary]
    if len(primaries) != 1:
        raise UsageError(
            f"exactly one site must have primary = true, not {len(primaries)}"
            + (f" ({', '.join(primaries)})" if primaries else ""),
            hint="mark the site that accepts pushes; [redirector] primary for this one",
        )


def _name(value: str) -> str:
    if not _SITE_NAME.match(value):
        raise UsageError(f"site name {value!r} is invalid",
                         hint="use 1-64 letters, digits, '.', '_' or '-'")
    return value


def _url(value: str, what: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise UsageError(f"{what} must be an http:// or https:// URL, not {value!r}")
    host = value.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    if host in ("0.0.0.0", "[::]", ""):  # noqa: S104 (checking, not binding)
        raise UsageError(f"{what} {value!r} is not an address clients can reach",
                         hint="set [redirector] url or [server] public_url")
    return value.rstrip("/")


def _capacity(value: float, what: str) -> float:
    if value < 0:
        raise UsageError(f"{what} capacity must not be negative")
    return float(value)


def _at_least(value: int, low: int, key: str) -> int:
    if value < low:
        raise UsageError(f"[redirector] {key} must be at least {low}")
    return value


def _str_map(table: Mapping[str, Any], name: str) -> dict[str, str]:
    if not all(isinstance(v, str) for v in table.values()):
        raise UsageError(f"[redirector.{name}] values must be region names (strings)")
    return dict(table)


def _list_map(table: Mapping[str, Any]) -> dict[str, list[str]]:
    if not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
               for v in table.values()):
        raise UsageError("[redirector.neighbours] values must be lists of region names")
    return dict(table)
