"""Optional GeoIP: a MaxMind database (.mmdb, GeoLite2-Country or -City, or any with
``country.iso_code`` / ``continent.code``) the operator provides, mapped to regions by
``[redirector.geoip_regions]`` (country codes first, then continent codes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import maxminddb

from tain.core.regions import parse_address
from tain.errors import UsageError


class GeoIP:
    def __init__(self, path: Path, regions: Mapping[str, str]) -> None:
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise UsageError(f"[redirector] geoip_db {path} cannot be read: {exc}") from exc
        self._regions = {k.upper(): v for k, v in regions.items()}

    def region_of(self, address: str) -> str | None:
        ip = parse_address(address)
        if ip is None:
            return None
        try:
            record = self._reader.get(ip)
        except ValueError:  # an IPv6 address in an IPv4-only database
            return None
        if not isinstance(record, dict):
            return None
        for code in (_code(record, "country", "iso_code"), _code(record, "continent", "code")):
            if code and code.upper() in self._regions:
                return self._regions[code.upper()]
        return None

    def close(self) -> None:
        self._reader.close()


def _code(record: Mapping[str, Any], section: str, key: str) -> str | None:
    part = record.get(section)
    value = part.get(key) if isinstance(part, dict) else None
    return value if isinstance(value, str) else None
