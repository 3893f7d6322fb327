"""Agent settings (command line and TOML) and ignore rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tain.agent.config import (
    Timing,
    default_state_base,
    load_config,
    source_config,
    state_dir_for,
    timing_from_options,
)
from tain.agent.ignore import IgnoreRules
from tain.errors import UsageError

ENV = {"HOME": "/home/u", "TAIN_TOKEN": "tain_default", "TOKEN_B": "tain_b"}


def test_one_source_from_the_command_line(tmp_path: Path) -> None:
    src = source_config(
        tmp_path, repo="www", sites=["http://a:8080/", "https://b"], token="tain_x", env=ENV,
        bwlimit="10M", parallel=2,
    )
    assert src.sites == ("http://a:8080", "https://b")
    assert src.bwlimit == 10 * 1024 * 1024 and src.parallel == 2
    assert src.state_dir == state_dir_for(tmp_path.resolve(), "www",
                                          Path("/home/u/.local/state/tain/agent"))
    assert src.token_for("https://b") == "tain_x"
    assert default_state_base({"XDG_STATE_HOME": "/s"}) == Path("/s/tain/agent")


@pytest.mark.parametrize("kwargs, message", [
    ({"repo": "Bad Name"}, "invalid repository name"),
    ({"sites": []}, "at least one site"),
    ({"sites": ["ftp://x"]}, "http"),
    ({"sites": ["http://a", "http://a"]}, "twice"),
    ({"parallel": 0}, "parallel"),
    ({"bwlimit": "fast"}, "bad size"),
])
def test_bad_source_settings(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"repo": "www", "sites": ["http://a"], "token": "t", "env": ENV}
    values.update(kwargs)
    with pytest.raises(UsageError, match=message):
        source_config(tmp_path, **values)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not a directory"):
        source_config(tmp_path / "missing", repo="www", sites=["http://a"], token="t", env=ENV)


def test_several_sources_from_a_toml_file(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "pkgs").mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(f"""
state_dir = "state"
heartbeat = "10s"
max_backoff = 5
parallel = 8

[[source]]
dir = "www"
repo = "www"
sites = ["http://a:8080", {{url = "http://b:8080", token_env = "TOKEN_B"}}]
ignore = ["*.log"]
bwlimit = "1M"

[[source]]
dir = "{tmp_path / 'pkgs'}"
repo = "pkgs"
sites = ["http://a:8080"]
token = "tain_inline"
default_ignores = false
parallel = 1
state_dir = "/var/lib/pkgs-state"
""")
    agent = load_config(config, ENV)
    www, pkgs = agent.sources
    assert agent.timing == Timing(heartbeat=10.0, max_backoff=5.0)
    assert www.directory == (tmp_path / "www").resolve() and www.ignore == ("*.log",)
    assert www.token_for("http://a:8080") == "tain_default"
    assert www.token_for("http://b:8080") == "tain_b"
    assert www.parallel == 8 and www.bwlimit == 1024 * 1024
    assert www.state_dir.parent == tmp_path / "state"
    assert pkgs.token == "tain_inline" and not pkgs.default_ignores and pkgs.parallel == 1
    assert pkgs.state_dir == Path("/var/lib/pkgs-state")


@pytest.mark.parametrize("body, message", [
    ("", "at least one"),
    ("colour = 1\n[[source]]\n", "unknown setting"),
    ('[[source]]\ndir = "d"\nrepo = "r"\nsites = ["http://a"]\nextra = 1\n', "unknown"),
    ('[[source]]\ndir = "d"\nrepo = "r"\nsites = []\n', "at least one site"),
    ('[[source]]\ndir = "d"\nrepo = "r"\nsites = ["http://a"]\ntoken_env = "NOPE"\n', "no token"),
    ('[[source]]\ndir = "d"\nrepo = "r"\nsites = ["http://a"]\ntoken = "t"\ntoken_env = "X"\n',
     "not both"),
    ('[[source]]\ndir = "d"\nrepo = "r"\nsites = ["http://a"]\n[[source]]\ndir = "d"\n'
     'repo = "r"\nsites = ["http://b"]\n', "twice"),
    ('heartbeat = "soon"\n[[source]]\ndir = "d"\nrepo = "r"\nsites = ["http://a"]\n',
     "bad duration"),
    ("[[source]\n", "not valid TOML"),
])
def test_bad_toml(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "d").mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(body)
    with pytest.raises(UsageError, match=message):
        load_config(config, ENV)


def test_status_reads_a_config_without_tokens(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    config = tmp_path / "agent.toml"
    config.write_text('[[source]]\ndir = "d"\nrepo = "r"\nsites = ["http://a"]\n')
    assert load_config(config, {}, need_tokens=False).sources[0].token is None
    with pytest.raises(UsageError):
        load_config(config, {})
    with pytest.raises(UsageError, match="no agent configuration"):
        load_config(tmp_path / "none.toml", {})


def test_timing_from_options() -> None:
    assert timing_from_options(heartbeat="2m", rescan=None) == Timing(heartbeat=120.0)
    assert timing_from_options(rescan="0").rescan == 0.0
    assert timing_from_options(rescan="never").rescan == 0.0


def test_default_rules_ignore_editor_temporary_files(tmp_path: Path) -> None:
    rules = IgnoreRules.load(tmp_path)
    for name in ["a.txt~", "d/.a.txt.swp", ".x.swo", "4913", "d/.#a.txt", "#a.txt#",
                 ".~lock.doc.odt#", "~$report.docx", "f.kate-swp", ".goutputstream-AB12",
                 "x.txt___jb_tmp___"]:
        assert rules.ignored(name), name
    for name in ["a.txt", "swp", "d/4913x", "notes#", "a.log"]:
        assert not rules.ignored(name), name
    assert not IgnoreRules.load(tmp_path, defaults=False).ignored("a.txt~")


def test_tainignore_and_extra_rules(tmp_path: Path) -> None:
    (tmp_path / ".tainignore").write_text("# comment\n*.log\n!keep.log\nbuild/\n/top-only\n")
    rules = IgnoreRules.load(tmp_path, ["cache"])
    assert rules.ignored("x.log") and rules.ignored("d/y.log")
    assert not rules.ignored("keep.log")
    assert rules.ignored("build", is_dir=True) and rules.ignored("a/build/x.o")
    assert not rules.ignored("build")  # a file named build is not the directory
    assert rules.ignored("top-only") and not rules.ignored("d/top-only")
    assert rules.ignored("cache", is_dir=True) and rules.ignored("cache/x")
    assert rules.fingerprint != IgnoreRules.load(tmp_path).fingerprint
