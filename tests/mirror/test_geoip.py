"""Optional GeoIP: a MaxMind database the operator provides (here a tiny one written
by the test), its country and continent codes mapped to regions."""

from __future__ import annotations

from pathlib import Path

import maxminddb
import pytest

from tain.errors import UsageError
from tain.mirror.geoip import GeoIP
from tests.mirror.mmdb import write_mmdb

NETWORKS = {
    "10.1.0.0/16": {"country": {"iso_code": "DE"}, "continent": {"code": "EU"}},
    "10.2.0.0/16": {"country": {"iso_code": "FR"}, "continent": {"code": "EU"}},
    "10.3.0.0/16": {"country": {"iso_code": "BR"}, "continent": {"code": "SA"}},
    "172.16.5.0/24": {"continent": {"code": "NA"}},
}


@pytest.fixture
def mmdb(tmp_path: Path) -> Path:
    path = tmp_path / "country.mmdb"
    write_mmdb(path, NETWORKS)
    return path


def test_the_written_database_is_valid(mmdb: Path) -> None:
    with maxminddb.open_database(str(mmdb)) as reader:
        assert reader.get("10.1.2.3") == NETWORKS["10.1.0.0/16"]
        assert reader.get("10.4.0.1") is None


@pytest.mark.parametrize(("address", "region"), [
    ("10.1.2.3", "germany"),  # a country code
    ("10.2.2.3", "europe"),  # no country entry: its continent
    ("10.3.2.3", None),  # neither is mapped
    ("172.16.5.9", "americas"),
    ("192.0.2.1", None),  # not in the database
    ("2001:db8::1", None),  # IPv6 in an IPv4 database
    ("garbage", None),
])
def test_regions_from_geoip(mmdb: Path, address: str, region: str | None) -> None:
    geo = GeoIP(mmdb, {"de": "germany", "EU": "europe", "NA": "americas"})
    try:
        assert geo.region_of(address) == region
    finally:
        geo.close()


def test_an_unreadable_database_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(UsageError, match="geoip_db"):
        GeoIP(bad, {})
    with pytest.raises(UsageError, match="geoip_db"):
        GeoIP(tmp_path / "missing.mmdb", {})
