"""``tain user passwd`` against a real site: set from stdin, then sign in to the
console with it; clear errors for bad input."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tain.cli.main import app
from tests.conftest import RunningSite
from tests.console.conftest import post_login


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("TAIN_SITE", "TAIN_TOKEN", "TAIN_REPO", "TAIN_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_passwd_from_stdin_then_sign_in(runner: CliRunner, running_site: RunningSite) -> None:
    args = ["user", "passwd", "admin", "--site", running_site.url, "--token",
            running_site.token]
    result = runner.invoke(app, [*args, "--password-stdin"], input="a fine password\n")
    assert result.exit_code == 0, result.output
    assert "set the password of admin" in result.stdout
    with running_site.anonymous() as browser:
        wrong = post_login(browser, username="admin", password="a fine passwor")
        assert wrong.status_code == 401
        right = post_login(browser, username="admin", password="a fine password")
        assert right.status_code == 303
    with running_site.client() as api:
        entry = api.get("/api/v1/audit", params={"action": "user.passwd"}).json()["entries"]
    assert entry[-1]["actor"] == "admin" and entry[-1]["target"] == "admin"

    cleared = runner.invoke(app, [*args, "--clear", "--json"])
    assert cleared.exit_code == 0 and '"password_set": false' in cleared.stdout


def test_passwd_errors(runner: CliRunner, running_site: RunningSite) -> None:
    base = ["user", "passwd", "--site", running_site.url, "--token", running_site.token]
    short = runner.invoke(app, [*base, "admin", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 8" in short.stderr
    empty = runner.invoke(app, [*base, "admin", "--password-stdin"], input="")
    assert empty.exit_code == 2 and "stdin is empty" in empty.stderr
    no_tty = runner.invoke(app, [*base, "admin"])
    assert no_tty.exit_code == 2 and "--password-stdin" in no_tty.stderr
    nobody = runner.invoke(app, [*base, "nobody", "--password-stdin"], input="long enough\n")
    assert nobody.exit_code == 4 and "no user 'nobody'" in nobody.stderr
    for result in (short, empty, no_tty, nobody):
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    with running_site.client() as api:
        api.post("/api/v1/users", json={"name": "bob"})
        bob = api.post("/api/v1/tokens", json={"user": "bob"}).json()["token"]
    other = runner.invoke(app, ["user", "passwd", "admin", "--site", running_site.url,
                                "--token", bob, "--password-stdin"], input="long enough\n")
    assert other.exit_code == 3 and "not a site admin" in other.stderr
