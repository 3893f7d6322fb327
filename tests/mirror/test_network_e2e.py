"""Issue 4's whole network on loopback, nothing simulated: a primary that is also the
redirector, mirror m1 following it and mirror m2 following m1. Pushes propagate with
the same revision numbers and bytes; a blob rotting on m2's disk is found by a scrub
and fetched again from m2's upstream; a signed download from the second hop verifies
against the primary's key; m1 taken down leaves the redirector's rotation and comes
back when it is healthy again."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tain.cli.main import app
from tain.config import CONFIG_NAME
from tests.conftest import RunningSite
from tests.mirror.conftest import Sites, add_mirror_section, head_of, put, wait_for
from tests.mirror.test_follow import assert_same

FILES = {"dists/stable/Release": b"Suite: stable\n", "pool/p/pkg.deb": b"deb-bytes " * 3000,
         "README": b"hello\n"}


def _redirector(m1_port: int, m2_port: int) -> str:
    return f"""
[redirector]
enabled = true
name = "primary"
primary = true
check_interval = "1s"
fail_after = 1
recover_after = 1

[[sites]]
name = "m1"
url = "http://127.0.0.1:{m1_port}"

[[sites]]
name = "m2"
url = "http://127.0.0.1:{m2_port}"
"""


def _rotation(primary: RunningSite) -> dict[str, bool]:
    with primary.anonymous() as c:
        rows = c.get("/api/v1/sites").json()["sites"]
    return {s["name"]: bool(s["in_rotation"]) for s in rows}


def _blob_file(site: RunningSite, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return site.site_dir / "blobs" / "blobs" / sha[:2] / sha


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("TAIN_SITE", "TAIN_TOKEN", "TAIN_REPO", "TAIN_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_primary_and_two_hops_of_mirrors(sites: Sites, runner: CliRunner,
                                         tmp_path: Path) -> None:
    p_dir, p_token, p_port = sites.create("primary")
    m1_dir, m1_token, m1_port = sites.create("m1")
    m2_dir, m2_token, m2_port = sites.create("m2")
    (p_dir / CONFIG_NAME).write_text((p_dir / CONFIG_NAME).read_text()
                                     + _redirector(m1_port, m2_port))
    primary = sites.start(p_dir, p_token, p_port)
    add_mirror_section(m1_dir, primary.url, primary.token)
    m1 = sites.start(m1_dir, m1_token, m1_port)
    add_mirror_section(m2_dir, m1.url, m1.token)  # a token of the site it follows
    m2 = sites.start(m2_dir, m2_token, m2_port)

    with primary.client() as c:
        assert c.post("/api/v1/repos", json={"name": "deb", "public": True}).status_code == 201
    for path, data in FILES.items():
        assert put(primary, "deb", path, data).status_code in (200, 201)
    head = head_of(primary, "deb")
    wait_for(lambda: head_of(m2, "deb") == head)
    assert_same(primary, m1, "deb")
    assert_same(primary, m2, "deb")  # numbers, change digests, signatures, every SHA-256

    # a blob rots on m2's disk: the scrub finds it and fetches it again from m1
    rotten = _blob_file(m2, FILES["pool/p/pkg.deb"])
    rotten.write_bytes(b"X" + rotten.read_bytes()[1:])
    result = runner.invoke(app, ["scrub", str(m2_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert '"repaired": 1' in result.output and m1.url in result.output
    with m2.anonymous() as c:
        assert c.get("/deb/pool/p/pkg.deb").content == FILES["pool/p/pkg.deb"]

    # a signed download from the second hop verifies against the primary's key
    with primary.client() as c:
        key = c.get("/api/v1/repos/deb").json()["key_fingerprint"]
    wait_for(lambda: httpx.get(f"{m2.url}/api/v1/repos/deb/head").json().get("revision")
             == head)
    out = tmp_path / "pkg.deb"
    result = runner.invoke(app, ["get", "pool/p/pkg.deb", "--repo", "deb", "--site", m2.url,
                                 "--verify", "--key", key, "-o", str(out),
                                 "--state-file", str(tmp_path / "heads.json")])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == FILES["pool/p/pkg.deb"]

    # the redirector: m1 taken down leaves the rotation, and returns when healthy
    wait_for(lambda: _rotation(primary) == {"primary": True, "m1": True, "m2": True})
    sites.stop(m1)
    wait_for(lambda: not _rotation(primary)["m1"])
    with primary.anonymous() as c:
        for _ in range(20):
            where = c.get("/dl/deb/README").headers["location"]
            assert not where.startswith(f"http://127.0.0.1:{m1_port}/")
    m1 = sites.start(m1_dir, m1_token, m1_port)
    wait_for(lambda: _rotation(primary)["m1"])
    assert put(primary, "deb", "README", b"hello again\n").status_code in (200, 201)
    wait_for(lambda: head_of(m2, "deb") == head + 1)  # through the returned m1
    assert_same(primary, m2, "deb")
