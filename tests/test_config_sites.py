"""``[[sites]]`` and ``[redirector]`` in tain.toml: parsed once, a clear error for every
bad value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tain.config import parse
from tain.errors import UsageError

FULL = """
[server]
listen = "127.0.0.1:8080"
public_url = "https://eu.example.org/"

[redirector]
enabled = true
name = "eu1"
region = "eu"
capacity = 50
primary = true
check_interval = "15s"
stale_revisions = 3
stale_after = "5m"
fail_after = 3
recover_after = 1
sample_files = 2
max_sample_bytes = "256k"
timeout = "4s"
repos = ["debian"]
trusted_proxies = ["127.0.0.1/32", "10.255.0.0/16"]
geoip_db = "geo/country.mmdb"
popular_per_minute = 30
history_days = 7

[redirector.regions]
"10.1.0.0/16" = "eu"
"10.2.0.0/16" = "us"

[redirector.neighbours]
eu = ["uk"]

[redirector.geoip_regions]
DE = "eu"
NA = "us"

[[sites]]
name = "us1"
url = "https://us1.example.org/"
region = "us"
capacity = 200
token = "tain_secret"

[[sites]]
name = "uk1"
url = "http://uk1.example.org:8080"
region = "uk"
repos = ["debian"]
"""


def parsed(text: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return parse(tomllib.loads(text), tmp_path, {}).redirector


def test_full_config(tmp_path: Path) -> None:
    red = parsed(FULL, tmp_path)
    assert red is not None and red.enabled and red.active
    me = red.self_site
    assert me is not None and me.is_self
    assert (me.name, me.url, me.region, me.capacity, me.primary) == (
        "eu1", "https://eu.example.org", "eu", 50.0, True)
    assert [(s.name, s.url, s.region, s.capacity, s.primary, s.token) for s in red.sites] == [
        ("us1", "https://us1.example.org", "us", 200.0, False, "tain_secret"),
        ("uk1", "http://uk1.example.org:8080", "uk", 100.0, False, None),
    ]
    assert red.primary == me
    assert red.sites[1].repos == ("debian",) and not red.sites[1].carries("alpine")
    assert red.sites[0].carries("alpine") and me.carries("alpine")
    assert [s.name for s in red.all_sites] == ["eu1", "us1", "uk1"]
    assert red.check_interval_seconds == 15 and red.timeout_seconds == 4.0
    t = red.thresholds
    assert (t.max_lag_revisions, t.max_lag_seconds, t.fail_after, t.recover_after) == (
        3, 300.0, 3, 1)
    assert red.sample_files == 2 and red.max_sample_bytes == 256 * 1024
    assert red.repos == ("debian",)
    assert red.regions.region_of("10.2.3.4") == "us"
    assert red.neighbours == {"eu": ("uk",)}
    assert red.geoip_db == tmp_path / "geo/country.mmdb"
    assert red.geoip_regions == {"DE": "eu", "NA": "us"}
    assert len(red.trusted_proxies) == 2
    assert red.popular_per_minute == 30.0 and red.history_days == 7.0


def test_no_sites_no_redirector(tmp_path: Path) -> None:
    red = parsed('[server]\nlisten = "0.0.0.0:8080"\n', tmp_path)
    assert red is not None and not red.active and not red.enabled and red.all_sites == ()


def test_self_url_defaults_to_the_listen_address(tmp_path: Path) -> None:
    text = ('[server]\nlisten = "127.0.0.1:9000"\n[redirector]\nprimary = true\n'
            '[[sites]]\nname = "m"\nurl = "http://m.example"\n')
    red = parsed(text, tmp_path)
    assert red is not None and red.self_site is not None
    assert red.self_site.url == "http://127.0.0.1:9000" and red.self_site.name == "self"
    assert red.active and not red.enabled  # checks run, no /dl/


def site(extra: str = "", name: str = "m", url: str = "http://m.example") -> str:
    return f'[[sites]]\nname = "{name}"\nurl = "{url}"\n{extra}\n'


@pytest.mark.parametrize(("text", "words"), [
    (site(), "exactly one site must have primary = true, not 0"),
    ('[redirector]\nprimary = true\n' + site("primary = true"), "not 2 (self, m)"),
    ('[redirector]\nprimary = true\n' + site() + site(), "two sites are named 'm'"),
    ('[redirector]\nprimary = true\nname = "m"\n' + site(), "two sites are named 'm'"),
    ('[redirector]\nprimary = true\n' + site(name="bad name"), "site name 'bad name'"),
    ('[redirector]\nprimary = true\n' + site(url="ftp://m"), "must be an http"),
    ('[redirector]\nprimary = true\n' + site(url=""), "must be an http"),
    ('[redirector]\nprimary = true\n' + site("capacity = -1"), "must not be negative"),
    ('[redirector]\nprimary = true\n' + site('capacity = "big"'), "capacity"),
    ('[redirector]\nprimary = true\nfail_after = 0\n' + site(), "fail_after must be at least 1"),
    ('[redirector]\nprimary = true\ncheck_interval = "soon"\n' + site(), "bad duration"),
    ('[redirector]\nprimary = true\nmax_sample_bytes = "lots"\n' + site(), "bad size"),
    ('[redirector]\nprimary = true\ntrusted_proxies = ["x"]\n' + site(), "not a network"),
    ('[redirector]\nprimary = true\n[redirector.regions]\n"10.0.0.0/40" = "eu"\n' + site(),
     "not a network"),
    ('[redirector]\nprimary = true\n[redirector.regions]\n"10.0.0.0/8" = 1\n' + site(),
     "region names"),
    ('[redirector]\nprimary = true\n[redirector.neighbours]\neu = "uk"\n' + site(),
     "lists of region names"),
    ('sites = "m"\n', "must be a list of tables"),
    ('[server]\nlisten = "0.0.0.0:8080"\n[redirector]\nprimary = true\n' + site(),
     "not an address clients can reach"),
])
def test_bad_values_are_named(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parsed(text, tmp_path)
    assert words in str(caught.value)
