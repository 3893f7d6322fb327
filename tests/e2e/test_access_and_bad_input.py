"""Who may do what, and malformed requests: rejected with the right status, nothing changed."""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import RunningSite
from tests.e2e.protocol import push_files, put_change


def _token_for(c: object, user: str) -> str:
    import httpx

    assert isinstance(c, httpx.Client)
    c.post("/api/v1/users", json={"name": user}).raise_for_status()
    return str(c.post("/api/v1/tokens", json={"user": user}).json()["token"])


def test_roles_decide_and_refusals_change_nothing(running_site: RunningSite) -> None:
    with running_site.client() as admin:
        admin.post("/api/v1/repos", json={"name": "priv"}).raise_for_status()
        push_files(admin, "priv", {"secret.txt": b"s"})
        reader = _token_for(admin, "reader")
        writer = _token_for(admin, "writer")
        admin.put("/api/v1/grants", json={"user": "reader", "repo": "priv", "role": "read"})
        admin.put("/api/v1/grants", json={"user": "writer", "repo": "priv", "role": "write"})
    with running_site.anonymous() as anon:
        assert anon.get("/priv/secret.txt").status_code == 401
        assert anon.put("/priv/x", content=b"x").status_code == 401
        bad = anon.get("/priv/secret.txt", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401
    with running_site.client(reader) as c:
        assert c.get("/priv/secret.txt").content == b"s"
        assert c.put("/priv/x", content=b"x").status_code == 403
        assert c.delete("/priv/secret.txt").status_code == 403
        assert c.post("/api/v1/repos/priv/rollback", json={"to_rev": 1}).status_code == 403
        assert c.post("/api/v1/users", json={"name": "evil"}).status_code == 403
        assert c.get("/api/v1/audit").status_code == 403
    with running_site.client(writer) as c:
        assert c.put("/priv/x", content=b"x").status_code == 201
        # repository-wide rollback needs admin
        assert c.post("/api/v1/repos/priv/rollback", json={"to_rev": 1}).status_code == 403
    with running_site.client() as admin:
        assert admin.get("/api/v1/repos/priv").json()["head"] == 2
        tokens = admin.get("/api/v1/tokens", params={"user": "reader"}).json()["tokens"]
        admin.delete(f"/api/v1/tokens/{tokens[0]['id']}").raise_for_status()
    with running_site.client(reader) as c:
        assert c.get("/priv/secret.txt").status_code == 401


@pytest.mark.parametrize(
    "path",
    ["../escape", "/abs/path", "a/../../b", "nul\x00byte", "x" * 300, "a//b", "lone\ud800"],
)
def test_malformed_paths_are_rejected(running_site: RunningSite, path: str) -> None:
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "p"}).raise_for_status()
        change = put_change("ok", b"data")
        change["path"] = path
        r = c.post("/api/v1/repos/p/commits",
                   content=__import__("json").dumps({"changes": [change]}),
                   headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["error"] in {"invalid_path", "invalid_request", "usage"}
        assert c.get("/api/v1/repos/p").json()["head"] == 0


def test_bad_bodies_and_unknown_things(running_site: RunningSite) -> None:
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "b"}).raise_for_status()
        assert c.post("/api/v1/repos", json={"name": "b"}).status_code == 409
        assert c.post("/api/v1/repos", json={"name": "API"}).status_code == 400
        assert c.post("/api/v1/repos", json={"name": "api"}).status_code == 400
        assert c.get("/nosuch/file").status_code == 404
        assert c.get("/b/file", params={"rev": "x"}).status_code == 400
        assert c.get("/b/file", params={"rev": 9}).status_code == 404
        r = c.post("/api/v1/repos/b/commits", json={"changes": [{"op": "chmod"}]})
        assert r.status_code == 400
        r = c.post("/api/v1/repos/b/chunks", content=b"not zstd at all")
        assert r.status_code in (400, 422)
        r = c.post("/api/v1/repos/b/missing", json={"blobs": ["xyz"]})
        assert r.status_code == 400
        # a commit naming content the site never received
        r = c.post("/api/v1/repos/b/commits", json={"changes": [put_change("f", b"abc")]})
        assert r.status_code == 409 and r.json()["error"] == "missing_data"
        assert c.get("/api/v1/repos/b").json()["head"] == 0


def test_audit_log_records_and_detects_tampering(running_site: RunningSite) -> None:
    with running_site.client() as c:
        c.post("/api/v1/repos", json={"name": "aud"}).raise_for_status()
        push_files(c, "aud", {"f": b"1"})
        c.post("/api/v1/users", json={"name": "bob"}).raise_for_status()
        actions = [e["action"] for e in c.get("/api/v1/audit").json()["entries"]]
        assert actions == ["user.add", "token.create", "repo.create", "commit", "user.add"]
        assert c.get("/api/v1/audit/verify").json() == {"entries": 5, "ok": True, "problems": []}
    db = sqlite3.connect(running_site.site_dir / "catalog.sqlite3")
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 4")
    db.commit()
    db.close()
    with running_site.client() as c:
        verdict = c.get("/api/v1/audit/verify").json()
        assert verdict["ok"] is False
        assert any("entry 4" in p for p in verdict["problems"])
