"""Disaster recovery: a mirror is promoted when the primary is lost, keeps every
revision, and the agent carries on against it; the old primary rejoins as a mirror of
the new one, or refuses when the histories forked."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from tain.cli.main import app
from tain.client import SiteClient
from tests.agent.conftest import REPO, AgentProcess, Site, wait_identical
from tests.agent.test_agent_failures import config_file
from tests.conftest import RunningSite
from tests.mirror.conftest import Sites, add_mirror_section, wait_for


def _log(site: RunningSite) -> list[tuple[int, str]]:
    with SiteClient(site.url, site.token) as c:
        return sorted((r["number"], r["change_digest"]) for r in c.revisions(REPO, limit=1000))


def _head(site: RunningSite) -> int:
    with SiteClient(site.url, site.token) as c:
        return int(c.get_repo(REPO)["head"])


def _trace_error(site: RunningSite) -> str:
    with SiteClient(site.url, site.token) as c:
        traces = c._get("/api/v1/mirror")["traces"]
    return next((str(t["last_error"]) for t in traces if t["last_error"]), "")


def _port(site: RunningSite) -> int:
    return int(site.url.rsplit(":", 1)[1])


def _primary_with_repo(sites: Sites) -> RunningSite:
    primary = sites.new("primary")
    with SiteClient(primary.url, primary.token) as c:
        c.create_repo(REPO)
    return primary


def test_promote_with_the_agent_and_rejoin(
        tmp_path: Path, sites: Sites, agents: Callable[..., AgentProcess]) -> None:
    primary = _primary_with_repo(sites)
    mirror = sites.new("mirror", mirror_of=primary)
    root = tmp_path / "src"
    (root / "docs").mkdir(parents=True)
    for i in range(5):
        (root / "docs" / f"{i}.txt").write_text(f"doc {i}\n")
    both = [Site(s.url, s.token, s.site_dir) for s in (primary, mirror)]
    config = config_file(tmp_path / "agent.toml", root, both, tmp_path / "state")
    agent = agents(root, both)
    agent.start_config(config, {"TOKEN_0": primary.token, "TOKEN_1": mirror.token})
    wait_identical(root, primary.url, primary.token)
    wait_for(lambda: _log(mirror) == _log(primary))
    before = _log(primary)

    sites.stop(primary)  # the primary is lost
    (root / "while-down.txt").write_text("queued until a primary exists\n")
    wait_for(lambda: "read-only mirror" in agent.output())  # refused like a site down
    shutil.copy(primary.site_dir / "keys" / "signing.key",
                mirror.site_dir / "keys" / "signing.key")  # the operator moves the key
    with SiteClient(mirror.url, mirror.token) as c:
        promoted = c._json("POST", "/api/v1/mirror/promote")
    assert promoted["promoted"] and not promoted["new_root"]
    wait_identical(root, mirror.url, mirror.token)  # the agent carries on
    assert _log(mirror)[: len(before)] == before  # nothing lost, same history
    assert "# [mirror]" in (mirror.site_dir / "tain.toml").read_text()

    # the old primary comes back as a mirror of the new one and catches up
    add_mirror_section(primary.site_dir, mirror.url, mirror.token)
    primary = sites.start(primary.site_dir, primary.token, _port(primary))
    wait_for(lambda: _log(primary) == _log(mirror))
    agent.stop()


def test_rejoin_refuses_a_forked_history(tmp_path: Path, sites: Sites) -> None:
    primary = _primary_with_repo(sites)
    mirror = sites.new("mirror", mirror_of=primary)
    with SiteClient(primary.url, primary.token) as c:
        c.put_file(REPO, "a.txt", _file(tmp_path, "a", b"a"))
    wait_for(lambda: _head(mirror) == 1)
    sites.stop(mirror)
    with SiteClient(primary.url, primary.token) as c:  # never reaches the mirror
        c.put_file(REPO, "b.txt", _file(tmp_path, "b", b"only on the old primary"))
    sites.stop(primary)

    runner = CliRunner()
    refused = runner.invoke(app, ["promote", str(mirror.site_dir)])
    assert refused.exit_code == 5 and "not the primary's current key" in refused.output
    shutil.copy(primary.site_dir / "keys" / "signing.key",
                mirror.site_dir / "keys" / "signing.key")
    done = runner.invoke(app, ["promote", str(mirror.site_dir)])
    assert done.exit_code == 0, done.output
    assert "is now a primary" in done.output
    mirror = sites.start(mirror.site_dir, mirror.token, _port(mirror))
    with SiteClient(mirror.url, mirror.token) as c:
        c.put_file(REPO, "c.txt", _file(tmp_path, "c", b"only on the new primary"))

    add_mirror_section(primary.site_dir, mirror.url, mirror.token)
    primary = sites.start(primary.site_dir, primary.token, _port(primary))
    wait_for(lambda: _trace_error(primary))
    assert "histories have forked" in _trace_error(primary)
    assert _head(primary) == 2  # its own revision 2 is kept, nothing overwritten


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / f"{name}.upload"
    path.write_bytes(data)
    return path
