"""The mirror parts of the command line that need no running site."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tain.cli.main import app
from tain.config import load


def test_init_mirror_of_writes_the_mirror_section(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["init", str(tmp_path / "m"), "--mirror-of",
                               "http://primary.example:8080/", "--token-env", "UP_TOKEN"])
    assert done.exit_code == 0, done.output
    assert "mirror of http://primary.example:8080/" in done.output
    config = load(tmp_path / "m", {"UP_TOKEN": "secret"})
    assert config.mirror is not None
    assert config.mirror.upstreams == ("http://primary.example:8080",)
    assert config.mirror.token == "secret" and config.mirror.repos is None


def test_bad_mirror_arguments_are_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (["--mirror-of", "primary:8080"], ["--token", "t"]):
        result = runner.invoke(app, ["init", str(tmp_path / "x"), *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, ["get", "f", "--repo", "deb", "--verify"])
    assert result.exit_code == 2 and "--verify needs --key" in result.output
    result = runner.invoke(app, ["promote", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no site at" in result.output
