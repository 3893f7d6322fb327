"""The ``[console]`` section of tain.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tain.config import ConsoleConfig, parse
from tain.errors import UsageError


def test_defaults_and_values(tmp_path: Path) -> None:
    assert parse({}, tmp_path, {}).console == ConsoleConfig()
    raw = tomllib.loads('[console]\nsession_lifetime = "2h"\nidle_timeout = "15m"\n'
                        'max_failed_logins = 10\nlockout = "1m"\n')
    assert parse(raw, tmp_path, {}).console == ConsoleConfig(7200, 900, 10, 60)


@pytest.mark.parametrize(("text", "words"), [
    ('idle_timeout = "0s"', "must be positive"),
    ('lockout = ""', "must be positive"),
    ('session_lifetime = "forever"', "duration"),
    ("max_failed_logins = 0", "at least 1"),
    ('max_failed_logins = "5"', "max_failed_logins"),
])
def test_bad_values_are_named(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse(tomllib.loads(f"[console]\n{text}\n"), tmp_path, {})
