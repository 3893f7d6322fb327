"""The console over plain HTTP (httpx with a cookie jar): sign-in, sessions, CSRF,
roles, error pages. The browser tests (test_console_browser.py) cover the pages'
behaviour in Chromium; these are the fast checks of the security rules."""

from __future__ import annotations

import re
import sqlite3

import httpx

from tain.service.passwords import hash_password
from tests.conftest import RunningSite
from tests.console.conftest import (
    ADMIN_PASSWORD,
    READER_PASSWORD,
    ConsoleSite,
    csrf_of,
    post_login,
    put_file,
)

COOKIE = "tain_console"


def test_anonymous_sees_only_the_sign_in_page(console_site: ConsoleSite) -> None:
    with console_site.browser() as anon:
        for path in ("/console/", "/console/repos/docs", "/console/users", "/console/stats"):
            answer = anon.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/console/login?next={path}"
        login = anon.get("/console/login")
        assert login.status_code == 200 and 'name="password"' in login.text
        assert "docs" not in login.text
        # htmx polling after the session ended: told to reload into the sign-in page
        panel = anon.get("/console/panels/repos", headers={"HX-Request": "true"})
        assert panel.status_code == 401 and panel.headers["HX-Redirect"].startswith(
            "/console/login")
        # a form post without a session is refused, not performed
        assert anon.post("/console/users", data={"name": "eve"}).status_code == 401
    with console_site.api() as api:
        names = [u["name"] for u in api.get("/api/v1/users").json()["users"]]
    assert "eve" not in names


def test_sign_in_sets_a_hardened_cookie_and_sign_out_ends_the_session(
    console_site: ConsoleSite,
) -> None:
    with console_site.browser() as client:
        answer = post_login(client, username="admin", password=ADMIN_PASSWORD,
                            next="/console/repos")
        assert answer.status_code == 303 and answer.headers["location"] == "/console/repos"
        cookie = answer.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "Path=/console" in cookie
        assert "SameSite=lax" in cookie and "Secure" not in cookie  # plain HTTP here
        secret = client.cookies[COOKIE]
        page = client.get("/console/")
        assert page.status_code == 200 and "admin" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        client.post("/console/logout", data={"csrf": csrf_of(page.text)})
        again = client.post("/console/logout")  # no session any more: just to sign-in
        assert again.status_code == 303 and again.headers["location"] == "/console/login"
        # the row is gone: the old cookie no longer works even if replayed
        with console_site.browser() as replay:
            replay.cookies.set(COOKIE, secret)
            assert replay.get("/console/").status_code == 303


def test_sign_in_needs_the_forms_csrf_token_and_forgeries_are_not_failures(
    console_site: ConsoleSite,
) -> None:
    with console_site.api() as api:
        assert api.post("/api/v1/users", json={"name": "forged"}).status_code == 201
        api.put("/api/v1/users/forged/password", json={"password": "forged password"})
    with console_site.browser() as client:
        form = client.get("/console/login")
        cookie = form.headers["set-cookie"]
        assert "tain_login_csrf=" in cookie and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie and "Path=/console" in cookie
        token = csrf_of(form.text)
        assert client.cookies["tain_login_csrf"] == token
        assert csrf_of(client.get("/console/login").text) == token  # kept for other tabs
        attempts = [{}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": token[:-1]}]
        for extra in attempts * 2:  # more than the lockout's 5 failures
            answer = client.post("/console/login", data={
                "username": "forged", "password": "wrong guess", **extra})
            assert answer.status_code == 403 and "did not come from this site" in answer.text
            assert COOKIE not in client.cookies
    with console_site.browser() as stranger:  # the right field but no cookie: forged
        answer = stranger.post("/console/login", data={
            "username": "forged", "password": "forged password", "csrf": token})
        assert answer.status_code == 403 and COOKIE not in stranger.cookies
    with console_site.browser() as client:  # the forgeries did not lock the user out
        signed_in = post_login(client, username="forged", password="forged password")
        assert signed_in.status_code == 303
        assert "tain_login_csrf=\"\"" in signed_in.headers["set-cookie"]  # spent


def test_secure_cookie_behind_a_tls_proxy(console_site: ConsoleSite) -> None:
    with console_site.browser() as client:
        answer = post_login(client, headers={"X-Forwarded-Proto": "https"},
                            username="admin", password=ADMIN_PASSWORD)
        assert "Secure" in answer.headers["set-cookie"]


def test_open_redirects_are_not_followed(console_site: ConsoleSite) -> None:
    with console_site.browser() as client:
        answer = post_login(client, username="admin", password=ADMIN_PASSWORD,
                            next="//evil.example/x")
        assert answer.headers["location"] == "/console/"


def test_wrong_password_and_unknown_user_get_the_same_answer(
    console_site: ConsoleSite,
) -> None:
    with console_site.browser() as client:
        wrong = post_login(client, username="admin", password="nope")
        nobody = post_login(client, username="nobody", password=ADMIN_PASSWORD)
        assert wrong.status_code == nobody.status_code == 401
        assert "wrong user name or password" in wrong.text
        assert "wrong user name or password" in nobody.text
        assert COOKIE not in client.cookies


def test_repeated_failures_lock_the_user_out_for_a_while(console_site: ConsoleSite) -> None:
    with console_site.api() as api:
        assert api.post("/api/v1/users", json={"name": "victim"}).status_code == 201
        api.put("/api/v1/users/victim/password", json={"password": "victim password"})
    with console_site.browser() as client:
        for _ in range(5):
            answer = post_login(client, username="victim", password="guess")
            assert answer.status_code == 401
        locked = post_login(client, username="victim", password="victim password")
        assert locked.status_code == 429 and "try again in" in locked.text
        assert COOKIE not in client.cookies


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(
    console_site: ConsoleSite,
) -> None:
    with console_site.sign_in() as admin:
        token = csrf_of(admin.get("/console/users").text)
        assert admin.post("/console/users", data={"name": "mallory"}).status_code == 403
        wrong = admin.post("/console/users", data={"name": "mallory", "csrf": "0" * 64})
        assert wrong.status_code == 403 and "CSRF" in wrong.text
        header = admin.post("/console/users", data={"name": "mallory"},
                            headers={"X-CSRF-Token": "f" * 64})
        assert header.status_code == 403
        with console_site.api() as api:
            names = [u["name"] for u in api.get("/api/v1/users").json()["users"]]
        assert "mallory" not in names
        # the same form with the session's token works, as a field or an htmx header
        done = admin.post("/console/users", data={"name": "mallory", "csrf": token})
        assert done.status_code == 303
        gone = admin.post("/console/users/mallory/delete", headers={"X-CSRF-Token": token})
        assert gone.status_code == 303


def test_a_reader_sees_no_admin_actions_and_cannot_post_them(
    console_site: ConsoleSite,
) -> None:
    with console_site.sign_in("reader", READER_PASSWORD) as reader:
        overview = reader.get("/console/")
        assert "Users and access" not in overview.text and "Audit log" not in overview.text
        token = csrf_of(overview.text)
        history = reader.get("/console/repos/docs/history?path=guide/readme.txt")
        assert history.status_code == 200 and "roll back" not in history.text
        assert "Retention" not in reader.get("/console/repos/docs/revisions").text
        for path in ("/console/users", "/console/audit", "/console/ops"):
            assert reader.get(path).status_code == 403
        refused = reader.post("/console/repos/docs/rollback", data={
            "csrf": token, "to": "1", "path": "guide/readme.txt", "confirm": "yes"})
        assert refused.status_code == 403 and "lacks write access" in refused.text
        assert reader.post("/console/tokens", data={"csrf": token, "user": "reader"}
                           ).status_code == 403
    with console_site.api() as api:
        assert api.get("/api/v1/repos/docs").json()["head"] == 3
        assert not [t for t in api.get("/api/v1/tokens").json()["tokens"]
                    if t["user"] == "reader"]


def test_private_repositories_are_hidden_from_users_without_a_grant(
    console_site: ConsoleSite,
) -> None:
    with console_site.api() as api:
        api.post("/api/v1/repos", json={"name": "secret"})
        put_file(api, "secret", "plan.txt", b"top secret\n")
    with console_site.sign_in() as admin:  # a private repository downloads via the console
        tree = admin.get("/console/repos/secret").text
        link = re.search(r'href="(/console/repos/secret/file\?path=plan.txt[^"]*)"', tree)
        assert link is not None
        download = admin.get(link.group(1).replace("&amp;", "&"))
        assert download.content == b"top secret\n"
        assert download.headers["content-disposition"].startswith("attachment")
    with console_site.sign_in("reader", READER_PASSWORD) as reader:
        assert reader.get("/console/repos/secret/file?path=plan.txt").status_code == 404
        assert "secret" not in reader.get("/console/repos").text
        assert "secret" not in reader.get("/console/panels/repos").text
        missing = reader.get("/console/repos/secret")
        assert missing.status_code == 404 and "no repository" in missing.text


def test_bad_input_gets_a_clear_error_page(console_site: ConsoleSite) -> None:
    with console_site.sign_in() as admin:
        bad_rev = admin.get("/console/repos/docs?rev=abc")
        assert bad_rev.status_code == 400 and "rev" in bad_rev.text
        gone = admin.get("/console/repos/docs?rev=99")
        assert gone.status_code == 404 and "99" in gone.text
        bad_path = admin.get("/console/repos/docs?path=../etc")
        assert bad_path.status_code == 400
        token = csrf_of(admin.get("/console/users").text)
        unconfirmed = admin.post("/console/repos/docs/rollback",
                                 data={"csrf": token, "to": "1", "path": "guide/readme.txt"})
        assert unconfirmed.status_code == 400 and "not confirmed" in unconfirmed.text
        short = admin.post("/console/users/reader/password",
                           data={"csrf": token, "password": "short"})
        assert short.status_code == 400 and "at least 8" in short.text
        retention = admin.post("/console/repos/docs/retention",
                               data={"csrf": token, "keep_last": "-2"})
        assert retention.status_code == 400 and "positive" in retention.text
        assert admin.get("/console/static/../conftest.py").status_code == 404
    with console_site.api() as api:
        assert api.get("/api/v1/repos/docs").json()["keep_last"] is None


def test_token_is_shown_once_and_works(console_site: ConsoleSite) -> None:
    with console_site.sign_in() as admin:
        token = csrf_of(admin.get("/console/users").text)
        created = admin.post("/console/tokens", data={
            "csrf": token, "user": "reader", "name": "laptop", "expires_days": "7"})
        assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
        secret = re.search(r'id="new-token-secret">([^<]+)<', created.text)
        assert secret is not None
        listing = admin.get("/console/users").text
        assert "laptop" in listing and secret.group(1) not in listing
    who = httpx.get(f"{console_site.url}/api/v1/whoami",
                    headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert who.json()["user"] == "reader"


def test_audit_page_filters_and_verifies_the_chain(console_site: ConsoleSite) -> None:
    with console_site.sign_in() as admin:
        page = admin.get("/console/audit", params={"action": "user.*"})
        assert 'hx-get="/console/audit/verify"' in page.text
        assert "Chain verified: all" in admin.get("/console/audit/verify").text
        actions = set(re.findall(r"<td>(user\.[a-z.]+)</td>", page.text))
        assert actions and all(a.startswith("user.") for a in actions)
        assert "console.login" in admin.get("/console/audit").text


def test_stats_page_carries_chart_data_from_the_revisions(console_site: ConsoleSite) -> None:
    with console_site.sign_in() as admin:
        page = admin.get("/console/stats", params={"days": 7}).text
        assert 'id="chart-data-revisions"' in page and 'id="chart-data-bytes"' in page
        assert '"label": "docs"' in page
        assert admin.get("/console/stats", params={"days": 0}).status_code == 400


def test_a_broken_audit_chain_is_shown(running_site: RunningSite) -> None:
    site = running_site.site
    assert site is not None
    site.catalog.set_password("admin", hash_password(ADMIN_PASSWORD), actor="test")
    with sqlite3.connect(running_site.site_dir / "catalog.sqlite3") as db:
        db.execute("UPDATE audit SET actor = 'someone else' WHERE seq = 1")
    with running_site.anonymous() as browser:
        post_login(browser, username="admin", password=ADMIN_PASSWORD)
        verdict = browser.get("/console/audit/verify").text
    assert "The audit chain is broken" in verdict
    assert "entry 1: content was changed" in verdict
