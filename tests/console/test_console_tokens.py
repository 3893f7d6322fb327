"""My tokens: a user who is not a site admin manages their own API tokens in the
console (list, create shown once, revoke), never someone else's; every change is a
CSRF-checked post and audited with the user as actor."""

from __future__ import annotations

import re

import httpx

from tests.console.conftest import READER_PASSWORD, ConsoleSite, csrf_of

MINE = "/console/account/tokens"


def _whoami(console_site: ConsoleSite, secret: str) -> httpx.Response:
    with httpx.Client(base_url=console_site.url, timeout=30,
                      headers={"Authorization": f"Bearer {secret}"}) as client:
        return client.get("/api/v1/whoami")


def _audit(console_site: ConsoleSite, action: str) -> dict[str, object]:
    with console_site.api() as api:
        entries = api.get("/api/v1/audit", params={"action": action}).json()["entries"]
    assert entries, f"no {action} audit entry"
    last: dict[str, object] = entries[-1]
    return last


def test_a_reader_creates_lists_and_revokes_their_own_token(console_site: ConsoleSite) -> None:
    with console_site.sign_in("reader", READER_PASSWORD) as reader:
        listing = reader.get(MINE)
        assert listing.status_code == 200 and 'href="/console/account/tokens"' in listing.text
        created = reader.post(MINE, data={"csrf": csrf_of(listing.text), "name": "laptop",
                                          "expires_days": "30"})
        assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
        found = re.search(r'id="new-token-secret">([^<]+)<', created.text)
        assert found, created.text
        secret = found.group(1)
        assert _whoami(console_site, secret).json()["user"] == "reader"
        entry = _audit(console_site, "token.create")
        assert entry["actor"] == "reader" and entry["target"] == "reader"

        listing = reader.get(MINE).text
        assert "laptop" in listing and secret not in listing  # shown that once only
        token_id = int(re.findall(r'/account/tokens/(\d+)/revoke', listing)[-1])
        revoked = reader.post(f"{MINE}/{token_id}/revoke", data={"csrf": csrf_of(listing)})
        assert revoked.status_code == 303 and "revoked+token" in revoked.headers["location"]
        assert _whoami(console_site, secret).status_code == 401
        entry = _audit(console_site, "token.revoke")
        assert entry["actor"] == "reader" and entry["target"] == "reader"
        assert "revoked" in reader.get(MINE).text


def test_a_reader_cannot_see_or_revoke_another_users_token(console_site: ConsoleSite) -> None:
    with console_site.api() as api:
        admin_ids = [t["id"] for t in api.get("/api/v1/tokens",
                                              params={"user": "admin"}).json()["tokens"]]
    with console_site.sign_in("reader", READER_PASSWORD) as reader:
        listing = reader.get(MINE).text
        for token_id in admin_ids:
            assert f"/account/tokens/{token_id}/revoke" not in listing
            refused = reader.post(f"{MINE}/{token_id}/revoke", data={"csrf": csrf_of(listing)})
            assert refused.status_code == 404 and f"no token {token_id}" in refused.text
        assert reader.get("/console/users").status_code == 403  # the admin page stays shut
    assert _whoami(console_site, console_site.token).json()["user"] == "admin"


def test_forged_or_bad_token_posts_change_nothing(console_site: ConsoleSite) -> None:
    with console_site.sign_in("reader", READER_PASSWORD) as reader:
        csrf = csrf_of(reader.get(MINE).text)
        created = reader.post(MINE, data={"csrf": csrf, "name": "kept"})
        secret = re.search(r'id="new-token-secret">([^<]+)<', created.text)
        assert secret
        token_id = int(re.findall(r'/account/tokens/(\d+)/revoke', reader.get(MINE).text)[-1])
        before = reader.get(MINE).text.count("<tr>")
        assert reader.post(MINE, data={"name": "forged"}).status_code == 403
        assert reader.post(MINE, data={"name": "forged", "csrf": "0" * 64}).status_code == 403
        assert reader.post(f"{MINE}/{token_id}/revoke").status_code == 403
        bad = reader.post(MINE, data={"csrf": csrf, "expires_days": "-1"})
        assert bad.status_code == 400 and "positive number of days" in bad.text
        long_name = reader.post(MINE, data={"csrf": csrf, "name": "x" * 129})
        assert long_name.status_code == 400 and "at most 128" in long_name.text
        after = reader.get(MINE).text
        assert after.count("<tr>") == before and "forged" not in after
        assert _whoami(console_site, secret.group(1)).json()["user"] == "reader"
