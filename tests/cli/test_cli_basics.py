"""The ``tain`` command without a site: version, help, and how errors are reported."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tain import __version__
from tain.cli.main import app
from tain.client import SiteClient

CLOSED = "http://127.0.0.1:9"
COMMANDS = (
    "push", "log", "history", "diff", "get", "rollback", "ls", "put", "rm", "repo", "user",
    "token", "grant", "grants", "audit", "gc", "retention", "whoami", "init", "serve",
    "scrub", "backup", "restore", "status", "agent", "agents",
)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("TAIN_SITE", "TAIN_TOKEN", "TAIN_REPO", "TAIN_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tain {__version__}"


def test_help_lists_every_command_group(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert f" {command} " in result.stdout, command


@pytest.mark.parametrize("group", ["repo", "user", "token", "audit", "retention"])
def test_group_help(runner: CliRunner, group: str) -> None:
    result = runner.invoke(app, [group, "--help"])
    assert result.exit_code == 0


def assert_one_line_error(stderr: str, start: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(start), stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "args",
    [
        ["whoami", "--site", CLOSED],
        ["ls", "--site", CLOSED, "--repo", "docs"],
        ["repo", "list", "--site", CLOSED, "--json"],
        ["audit", "verify", "--site", CLOSED],
    ],
)
def test_closed_port_exits_8_with_one_line(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 8
    assert_one_line_error(result.stderr, f"error: cannot reach {CLOSED}")
    assert "is 'tain serve' running there?" in result.stderr
    assert result.stdout == ""


def test_site_and_repo_come_from_the_environment(runner: CliRunner) -> None:
    env = {"TAIN_SITE": CLOSED, "TAIN_REPO": "docs"}
    result = runner.invoke(app, ["log"], env=env)
    assert result.exit_code == 8
    assert CLOSED in result.stderr


def test_usage_error_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["repo", "delete", "docs", "--site", CLOSED])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "error: deleting docs")


def test_invalid_path_is_rejected_before_any_request(runner: CliRunner) -> None:
    result = runner.invoke(app, ["history", "../etc", "--site", CLOSED, "-r", "docs"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "error: path")


def test_unexpected_exception_is_one_line_without_debug(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: SiteClient) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(SiteClient, "whoami", boom)
    result = runner.invoke(app, ["whoami"])
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "error: unexpected RuntimeError: boom")


def test_debug_shows_the_traceback(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--debug", "whoami", "--site", CLOSED])
    assert result.exit_code == 8
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach")
