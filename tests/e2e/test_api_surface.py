"""The API describes itself, and the small endpoints answer as documented."""

from __future__ import annotations

from tests.conftest import RunningSite


def test_openapi_lists_the_documented_endpoints(running_site: RunningSite) -> None:
    with running_site.anonymous() as a:
        spec = a.get("/api/v1/openapi.json").json()
        assert a.get("/api/v1/docs").status_code == 200
    paths = set(spec["paths"])
    for documented in (
        "/api/v1/repos", "/api/v1/repos/{repo}", "/api/v1/repos/{repo}/revisions",
        "/api/v1/repos/{repo}/tree", "/api/v1/repos/{repo}/history", "/api/v1/repos/{repo}/diff",
        "/api/v1/repos/{repo}/missing", "/api/v1/repos/{repo}/chunks",
        "/api/v1/repos/{repo}/commits", "/api/v1/repos/{repo}/rollback", "/api/v1/gc",
        "/api/v1/users", "/api/v1/tokens", "/api/v1/grants", "/api/v1/audit",
        "/api/v1/audit/verify", "/{repo}/{path}",
    ):
        assert documented in paths, documented


def test_site_info_health_and_anonymous_whoami(running_site: RunningSite) -> None:
    with running_site.anonymous() as a:
        assert a.get("/healthz").text == "ok\n"
        info = a.get("/api/v1/site").json()
        assert info["repos"] == 0 and info["version"]
        me = a.get("/api/v1/whoami").json()
        assert me["user"] == "anonymous" and me["is_admin"] is False
        assert a.get("/api/v1/users").status_code == 401
        assert a.get("/api/v1/repos").json() == {"repos": []}
