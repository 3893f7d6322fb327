"""Site configuration: parsed once, with a clear error for every bad value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tain.config import default_config_text, load, parse, parse_duration, parse_size
from tain.errors import UsageError


def test_default_config_parses(tmp_path: Path) -> None:
    (tmp_path / "tain.toml").write_text(default_config_text("127.0.0.1:9999"))
    config = load(tmp_path, {})
    assert config.listen == "127.0.0.1:9999"
    assert config.database_url == f"sqlite:///{tmp_path.resolve() / 'catalog.sqlite3'}"
    assert config.store.data_dirs == (tmp_path.resolve() / "blobs",)
    assert config.store.kind == "local" and config.publish


def test_environment_overrides_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "tain.toml").write_text(default_config_text())
    config = load(tmp_path, {"TAIN_DATABASE_URL": "postgresql+psycopg://x@h/db"})
    assert config.database_url == "postgresql+psycopg://x@h/db"


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="tain init"):
        load(tmp_path, {})
    (tmp_path / "tain.toml").write_text("[server\nlisten=")
    with pytest.raises(UsageError, match="not valid TOML"):
        load(tmp_path, {})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[store]\ncopies = 2\ndata_dirs = ["a"]', "copies"),
        ("[store]\ndata_dirs = []", "at least one"),
        ('[store]\nkind = "tape"', "kind"),
        ('[store]\nkind = "s3"', "bucket"),
        ('[server]\nlisten = 8080', "listen"),
        ("[scrub]\nfraction = 0", "fraction"),
        ('[scrub]\nevery = "soon"', "duration"),
        ('[backup]\nkeep = 0', "keep"),
        ("[store]\ncopies = true", "copies"),
        ("server = 1", "[server]"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(tomllib.loads(text), tmp_path, {})
    assert words in str(err.value)


def test_s3_store_settings(tmp_path: Path) -> None:
    raw = tomllib.loads(
        '[store]\nkind = "s3"\n[store.s3]\nbucket = "b"\nprefix = "/p/"\n'
        'endpoint_url = "http://127.0.0.1:9000"\npresign_downloads = true\n'
    )
    s3 = parse(raw, tmp_path, {}).store.s3
    assert s3 is not None and s3.bucket == "b" and s3.prefix == "p" and s3.presign_downloads


def test_durations_and_sizes() -> None:
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900
    assert parse_duration("1d") == 86400 and parse_duration("120") == 120
    assert parse_duration("") == 0
    assert parse_size("512k") == 512 * 1024 and parse_size("100MB/s") == 100 * 1024**2
    assert parse_size("1.5G") == int(1.5 * 1024**3) and parse_size("10") == 10
    for bad in ("x", "-1m"):
        with pytest.raises(UsageError):
            parse_duration(bad)
    with pytest.raises(UsageError):
        parse_size("lots")
