"""Mirror hardening: a pinned upstream key (an older pin still works after a rotation),
signatures checked against the key that was current when each revision was made, the
upstream's retention followed (and gc freeing what it dropped), and repositories
deleted upstream."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tain.cli.main import app
from tain.config import CONFIG_NAME
from tain.core.signing import load_private_key, sign_revision
from tests.conftest import RunningSite
from tests.mirror.conftest import Sites, head_of, put, trace_of, wait_for
from tests.mirror.proxy import rewriting_proxy


def _repo(site: RunningSite, name: str = "deb", **settings: object) -> None:
    with site.client() as c:
        assert c.post("/api/v1/repos", json={"name": name, "public": True}).status_code == 201
        if settings:
            assert c.patch(f"/api/v1/repos/{name}", json=settings).status_code == 200


def _key(site: RunningSite) -> str:
    with site.client() as c:
        return str(c.get("/api/v1/repos/deb").json()["key_fingerprint"])


def _error(site: RunningSite, repo: str = "deb") -> str:
    trace = trace_of(site, repo)
    return str(trace["last_error"]) if trace and trace["last_error"] else ""


def _configure(site_dir: Path, old: str, new: str) -> None:
    config = site_dir / CONFIG_NAME
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, new))


def test_a_pinned_key_refuses_an_impostor(sites: Sites, tmp_path: Path) -> None:
    primary = sites.new("primary")
    _repo(primary)
    put(primary, "deb", "a.txt", b"a")
    impostor = sites.new("impostor")  # same repository, its own key
    _repo(impostor)
    put(impostor, "deb", "a.txt", b"evil")
    site_dir, token, port = sites.create("pinned", mirror_of=impostor)
    _configure(site_dir, "[mirror]\n", f'[mirror]\nkey = "{_key(primary)}"\n')
    pinned = sites.start(site_dir, token, port)
    wait_for(lambda: "pinned key" in _error(pinned))
    assert head_of(pinned, "deb") == -1  # nothing synced
    status = CliRunner().invoke(app, ["status", "--site", pinned.url, "--token", token])
    assert "does not contain the pinned key" in status.output, status.output

    result = CliRunner().invoke(app, [
        "init", str(tmp_path / "good"), "--mirror-of", primary.url, "--token", "t",
        "--key", _key(primary)])
    assert result.exit_code == 0, result.output
    assert f'key = "{_key(primary)}"' in (tmp_path / "good" / CONFIG_NAME).read_text()
    bad = CliRunner().invoke(app, ["init", str(tmp_path / "x"), "--mirror-of", primary.url,
                                   "--key", "not-a-key"])
    assert bad.exit_code != 0 and "[mirror] key must be" in bad.output
    assert not (tmp_path / "x").exists()


def test_old_revisions_need_the_old_key_after_a_rotation(
        sites: Sites, caplog: pytest.LogCaptureFixture) -> None:
    primary = sites.new("primary")
    _repo(primary)
    put(primary, "deb", "one", b"1")
    put(primary, "deb", "two", b"2")
    old_key = _key(primary)
    with primary.client() as c:
        assert c.post("/api/v1/keys/rotate").status_code == 201
    put(primary, "deb", "three", b"3")  # signed by the new key
    new_key = load_private_key((primary.site_dir / "keys" / "signing.key").read_bytes())

    def forge(path: str, body: bytes) -> bytes:
        """Re-sign revision 1 (made under the old key) with the new key."""
        if not path.endswith("/repos/deb/log"):
            return body
        page = json.loads(body)
        for rev in page["revisions"]:
            if rev["number"] == 1:
                rev["signature"] = sign_revision(new_key, "deb", 1, rev["change_digest"])
        return json.dumps(page).encode()

    with caplog.at_level(logging.WARNING, logger="tain.mirror"):
        site_dir, token, port = sites.create("genuine", mirror_of=primary)
        _configure(site_dir, "[mirror]\n", f'[mirror]\nkey = "{old_key}"\n')
        genuine = sites.start(site_dir, token, port)  # pinned before the rotation
        wait_for(lambda: head_of(genuine, "deb") == 3)
        with rewriting_proxy(primary.url, forge) as via:
            forged = sites.new("forged", mirror_of=primary, via=via)
            wait_for(lambda: "current when the revision was made" in _error(forged))
        assert head_of(forged, "deb") in (-1, 0)  # nothing committed
    assert _error(genuine) == ""
    first_use = [r for r in caplog.records if "on first use" in r.getMessage()]
    assert len(first_use) == 1  # the unpinned mirror, once (not once per sync)


def test_a_mirror_follows_the_upstreams_retention_and_gc_frees_the_blobs(
        sites: Sites) -> None:
    primary = sites.new("primary")
    _repo(primary, keep_last=2)
    bodies = [f"version {n}".encode() * 50 for n in range(1, 5)]
    for body in bodies:
        put(primary, "deb", "f", body)
    site_dir, token, port = sites.create("mirror", mirror_of=primary)
    _configure(site_dir, "gc_grace_seconds = 3600", "gc_grace_seconds = 0")
    mirror = sites.start(site_dir, token, port)
    wait_for(lambda: head_of(mirror, "deb") == 4)
    with primary.client() as c:
        assert c.post("/api/v1/repos/deb/retention").json()["oldest_kept"] == 3
    with mirror.client() as c:
        def oldest() -> object:
            return c.get("/api/v1/repos/deb").json()["oldest_kept"] == 3
        wait_for(oldest)  # the next sync drops revisions 1 and 2 here too
        assert c.get("/api/v1/repos/deb").json()["keep_last"] == 2
        gone = c.get("/deb/f", params={"rev": 2})
        assert gone.status_code == 404 and "retention" in gone.text
        gc = c.post("/api/v1/gc", json={}).json()
        assert gc["blobs_deleted"] == 2, gc
        assert c.get("/deb/f", params={"rev": 3}).content == bodies[2]
        assert c.get("/deb/f").content == bodies[3]
        audit = c.get("/api/v1/audit", params={"action": "retention.follow"}).json()
        assert [e["actor"] for e in audit["entries"]] == ["mirror"]


def test_repositories_deleted_upstream_are_kept_or_pruned(sites: Sites) -> None:
    primary = sites.new("primary")
    for name in ("deb", "old"):
        _repo(primary, name)
        put(primary, name, "file", name.encode())
    keeper = sites.new("keeper", mirror_of=primary)
    site_dir, token, port = sites.create("pruner", mirror_of=primary)
    _configure(site_dir, "[mirror]\n", "[mirror]\nprune_deleted = true\n")
    pruner = sites.start(site_dir, token, port)
    for mirror in (keeper, pruner):
        wait_for(lambda m=mirror: head_of(m, "old") == 1 and head_of(m, "deb") == 1)
    with primary.client() as c:
        assert c.delete("/api/v1/repos/old").status_code == 200
    wait_for(lambda: _error(keeper, "old") == "deleted upstream")
    wait_for(lambda: head_of(pruner, "old") == -1)
    with keeper.client() as c:
        assert c.get("/old/file").content == b"old"  # still served
    assert (keeper.site_dir / "published" / ".tain-trace" / "old").read_text().count(
        "last-error: deleted upstream") == 1
    status = CliRunner().invoke(app, ["status", "--site", keeper.url, "--token", keeper.token])
    assert "old: revision 1" in status.output and "deleted upstream" in status.output
    with pruner.client() as c:
        audit = c.get("/api/v1/audit", params={"action": "repo.delete"}).json()["entries"]
        assert [(e["actor"], e["target"]) for e in audit] == [("mirror", "old")]
        assert c.get("/old/file").status_code == 404
    wait_for(lambda: trace_of(pruner, "old") is None)
    assert not (pruner.site_dir / "published" / "old").exists()
    put(primary, "deb", "more", b"more")  # the other repository is still followed
    wait_for(lambda: head_of(pruner, "deb") == 2)
