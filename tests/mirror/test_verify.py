"""``tain get --verify`` against untrusted sites: a tampered file, a forged manifest,
an old revision served as new, and an expired head statement are each refused with a
clear message; the genuine file passes, including after a key rotation."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tain.cli.main import app
from tain.core.signing import fingerprint
from tain.errors import IntegrityError
from tain.mirror.upstream import UpstreamClient
from tain.mirror.verify import HeadMemory, verified_download
from tests.conftest import RunningSite
from tests.mirror.conftest import Sites, head_of, put, wait_for
from tests.mirror.proxy import rewriting_proxy

DATA = b"trusted bytes\n" * 100


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("TAIN_SITE", "TAIN_TOKEN", "TAIN_REPO", "TAIN_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def _key(site: RunningSite) -> str:
    with site.client() as c:
        return str(c.get("/api/v1/repos/deb").json()["key_fingerprint"])


def _signed(site: RunningSite, revision: int) -> None:
    def ready() -> bool:
        with site.client() as c:
            r = c.get("/api/v1/repos/deb/head")
            return r.status_code == 200 and r.json()["revision"] == revision
    wait_for(ready)


def _get(runner: CliRunner, url: str, token: str, key: str, out: Path,
         state: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["get", "pkg.deb", "--repo", "deb", "--site", url,
                                 "--token", token, "--verify", "--key", key,
                                 "-o", str(out), "--state-file", str(state)])
    return result.exit_code, result.output


def _primary(sites: Sites) -> RunningSite:
    primary = sites.new("primary")
    with primary.client() as c:
        assert c.post("/api/v1/repos", json={"name": "deb"}).status_code == 201
    put(primary, "deb", "pkg.deb", DATA)
    put(primary, "deb", "other.txt", b"other")
    _signed(primary, 2)
    return primary


def test_genuine_file_passes_and_tampered_file_fails(
        sites: Sites, runner: CliRunner, tmp_path: Path) -> None:
    primary = _primary(sites)
    mirror = sites.new("mirror", mirror_of=primary)
    _signed(mirror, 2)  # copied verbatim from the primary
    key, state, out = _key(primary), tmp_path / "state.json", tmp_path / "pkg.deb"
    code, output = _get(runner, mirror.url, mirror.token, key, out, state)
    assert code == 0, output
    assert out.read_bytes() == DATA and "verified" in output
    status = runner.invoke(app, ["status", "--site", mirror.url, "--token", mirror.token])
    assert status.exit_code == 0, status.output
    assert f"mirror of {primary.url}" in status.output
    assert "deb: revision 2 (upstream 2, lag 0)" in status.output
    out.unlink()

    def tamper(path: str, body: bytes) -> bytes:  # same size, other bytes
        return b"evil" + body[4:] if path.endswith("/pkg.deb") else body

    with rewriting_proxy(mirror.url, tamper) as url:
        code, output = _get(runner, url, mirror.token, key, out, state)
    assert code == 6 and "tampered" in output, output
    assert not out.exists()


def test_forged_manifest_fails(sites: Sites, runner: CliRunner, tmp_path: Path) -> None:
    primary = _primary(sites)
    evil_sha = hashlib.sha256(b"evil").hexdigest()

    def forge(path: str, body: bytes) -> bytes:
        if path.endswith("/manifest"):
            lines = [json.loads(x) for x in body.splitlines()]
            for line in lines:
                if line["path"] == "pkg.deb":
                    line["sha256"], line["size"] = evil_sha, 4
            return b"".join(json.dumps(x, sort_keys=True, separators=(",", ":")).encode()
                            + b"\n" for x in lines)
        if path.endswith("/pkg.deb"):
            return b"evil"
        return body

    with rewriting_proxy(primary.url, forge) as url:
        code, output = _get(runner, url, primary.token, _key(primary), tmp_path / "p",
                            tmp_path / "state.json")
    assert code == 6 and "forged" in output, output


def test_rollback_is_refused(sites: Sites, runner: CliRunner, tmp_path: Path) -> None:
    primary = _primary(sites)
    created = sites.create("mirror", mirror_of=primary)
    mirror = sites.start(*created)
    _signed(mirror, 2)
    sites.stop(mirror)
    put(primary, "deb", "pkg.deb", DATA + b"v3")
    _signed(primary, 3)
    key, state = _key(primary), tmp_path / "state.json"
    assert _get(runner, primary.url, primary.token, key, tmp_path / "a", state)[0] == 0
    # the mirror comes back frozen at revision 2 (its upstream is gone)
    config = mirror.site_dir / "tain.toml"
    config.write_text(config.read_text().replace(primary.url, "http://127.0.0.1:9"))
    mirror = sites.start(*created)
    code, output = _get(runner, mirror.url, mirror.token, key, tmp_path / "b", state)
    assert code == 6 and "rollback" in output, output
    assert json.loads(state.read_text())  # the newest revision seen is kept


def test_expired_head_statement_is_refused(sites: Sites, tmp_path: Path) -> None:
    primary = _primary(sites)
    memory = HeadMemory(tmp_path / "state.json")
    client = UpstreamClient(primary.url, primary.token)
    with client, (tmp_path / "ok").open("wb") as ok, (tmp_path / "x").open("wb") as late:
        verified_download(client, "deb", "pkg.deb", ok, pinned=_key(primary), memory=memory)
        week_later = time.time() + 8 * 86400  # the default validity is 7 days
        with pytest.raises(IntegrityError, match="expired"):
            verified_download(client, "deb", "pkg.deb", late, pinned=_key(primary),
                              memory=memory, clock=lambda: week_later)


def test_key_rotation_followed_from_the_pinned_key(
        sites: Sites, runner: CliRunner, tmp_path: Path) -> None:
    primary = _primary(sites)
    old_key = _key(primary)
    mirror = sites.new("mirror", mirror_of=primary)
    _signed(mirror, 2)
    result = runner.invoke(app, ["repo", "rotate-key", "deb", "--site", primary.url,
                                 "--token", primary.token, "--json"])
    assert result.exit_code == 0, result.output
    new_key = json.loads(result.output)["fingerprint"]
    assert new_key != old_key and _key(primary) == new_key
    put(primary, "deb", "third.txt", b"3")
    wait_for(lambda: head_of(mirror, "deb") == 3)
    _signed(mirror, 3)
    with mirror.client() as c:
        head = c.get("/api/v1/repos/deb/head").json()
    with primary.client() as c:
        audit = c.get("/api/v1/audit", params={"action": "key.rotate"}).json()
    assert head["key"] == new_key and _key(mirror) == new_key
    assert len(audit["entries"]) == 1, audit
    code, output = _get(runner, mirror.url, mirror.token, old_key, tmp_path / "p",
                        tmp_path / "state.json")
    assert code == 0, output
    with primary.client() as c:
        chain = c.get("/api/v1/keys").json()["chain"]
    assert [fingerprint(link["new"]) for link in chain] == [old_key, new_key]
