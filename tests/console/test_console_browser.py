"""The console in a real headless Chromium (Debian's, driven by Playwright): sign in,
browse, roll back, manage users and tokens, and the limits of a non-admin. Screenshots
of the main pages go to ``$TAIN_SCREENSHOTS`` (default: a temporary directory)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.console.conftest import ADMIN_PASSWORD, READER_PASSWORD, ConsoleSite, put_file

CHROMIUM = "/usr/bin/chromium"
DASH = "\u2013"  # the en dash of a revision range, "1\u20132"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("TAIN_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def sign_in(page: Page, site: ConsoleSite, user: str, password: str) -> None:
    page.goto(f"{site.url}/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/$"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")
    expect(page.locator("header .who")).to_contain_text(user)


def test_sign_in_browse_and_see_history(
    context: BrowserContext, console_site: ConsoleSite, shots: Path,
) -> None:
    page = context.new_page()
    page.goto(f"{console_site.url}/console/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("button:has-text('Sign in')")
    expect(page.locator("p.error")).to_have_text("wrong user name or password")
    page.screenshot(path=shots / "login.png")

    sign_in(page, console_site, "admin", ADMIN_PASSWORD)
    panel = page.locator("#panel-repos")
    expect(panel.locator("tr", has_text="docs")).to_contain_text("3")
    page.screenshot(path=shots / "overview.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing sticks out
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=shots / "overview-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    panel.get_by_role("link", name="docs").click()
    page.get_by_role("link", name="guide/").click()
    page.get_by_role("link", name="readme.txt").click()
    expect(page.locator("dl.facts")).to_contain_text("23 B")
    page.get_by_role("link", name="History").click()
    rows = page.locator("tr.version")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"2{DASH}now")
    expect(rows.nth(1)).to_contain_text(f"1{DASH}1")
    page.screenshot(path=shots / "history.png", full_page=True)
    href = rows.nth(1).get_by_role("link", name="download").get_attribute("href")
    with page.expect_download() as started:  # docs is private: served to the session
        rows.nth(1).get_by_role("link", name="download").click()
    saved = started.value.path()
    assert href and saved.read_bytes() == b"first version\n"


def test_overview_panels_refresh_without_a_reload(
    context: BrowserContext, console_site: ConsoleSite,
) -> None:
    page = context.new_page()
    sign_in(page, console_site, "admin", ADMIN_PASSWORD)
    page.evaluate("window.loadedOnce = true")  # gone if the page were reloaded
    with console_site.api() as api:
        head = put_file(api, "docs", "later.txt", b"pushed while watching\n")
    row = page.locator("#panel-repos tr", has_text="docs")
    expect(row.locator("td").nth(1)).to_have_text(str(head), timeout=15_000)
    assert page.evaluate("window.loadedOnce") is True


def test_roll_back_a_file_from_the_browser(
    context: BrowserContext, console_site: ConsoleSite, shots: Path,
) -> None:
    page = context.new_page()
    sign_in(page, console_site, "admin", ADMIN_PASSWORD)
    page.goto(f"{console_site.url}/console/repos/docs/history?path=guide/readme.txt")
    old = page.locator("tr.version", has_text=f"1{DASH}1")
    old.get_by_role("link", name="roll back to this").click()
    expect(page.locator("h1")).to_contain_text("Roll back guide/readme.txt in docs")
    page.screenshot(path=shots / "rollback-confirm.png")
    page.click("#confirm-rollback")
    expect(page.locator("p.notice")).to_contain_text("rolled back to 1: revision")
    with console_site.api() as api:
        head = api.get("/api/v1/repos/docs").json()["head"]
        assert api.get("/docs/guide/readme.txt").content == b"first version\n"
    expect(page.locator("tr.version").first).to_contain_text(f"{head}{DASH}now")


def test_create_a_user_and_a_token_shown_once(
    context: BrowserContext, console_site: ConsoleSite, shots: Path,
) -> None:
    page = context.new_page()
    sign_in(page, console_site, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Users and access").click()
    form = page.locator("#new-user")
    form.locator("input[name=name]").fill("carol")
    form.locator("input[name=password]").fill("carol's password")
    form.get_by_role("button", name="Create user").click()
    expect(page.locator("p.notice")).to_have_text("created user carol")
    expect(page.locator("#users tr", has_text="carol")).to_be_visible()

    tokens = page.locator("#new-token")
    tokens.locator("select[name=user]").select_option("carol")
    tokens.locator("input[name=name]").fill("ci")
    tokens.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-secret").inner_text()
    assert secret.startswith("tain_")
    page.screenshot(path=shots / "token-created.png")
    whoami = httpx.get(f"{console_site.url}/api/v1/whoami",
                       headers={"Authorization": f"Bearer {secret}"})
    assert whoami.json()["user"] == "carol"
    page.goto(f"{console_site.url}/console/users")
    expect(page.locator("#tokens tr", has_text="ci")).to_contain_text("active")
    assert secret not in page.content()
    page.screenshot(path=shots / "users.png", full_page=True)
    for name in ("audit", "ops", "stats"):
        page.goto(f"{console_site.url}/console/{name}")
        if name == "stats":
            # every chart drawn: revisions, bytes committed, downloads, bytes served,
            # commit latency, mirror lag
            expect(page.locator("canvas[data-drawn=true]")).to_have_count(6)
        if name == "audit":
            expect(page.locator("#chain-status")).to_contain_text("Chain verified")
        page.screenshot(path=shots / f"{name}.png", full_page=True)


def test_a_reader_sees_no_admin_actions_and_csrf_less_posts_fail(
    context: BrowserContext, console_site: ConsoleSite,
) -> None:
    page = context.new_page()
    sign_in(page, console_site, "reader", READER_PASSWORD)
    nav = page.locator("header nav")
    expect(nav).to_contain_text("Repositories")
    expect(nav).not_to_contain_text("Users and access")
    page.goto(f"{console_site.url}/console/repos/docs/history?path=guide/readme.txt")
    expect(page.locator("tr.version").first).to_be_visible()
    expect(page.get_by_text("roll back to this")).to_have_count(0)
    page.goto(f"{console_site.url}/console/users")
    expect(page.locator("p.error")).to_contain_text("not a site admin")

    # the reader's own session, with its valid CSRF token, still may not roll back
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    refused = context.request.post(
        f"{console_site.url}/console/repos/docs/rollback",
        form={"csrf": csrf, "to": "1", "confirm": "yes"})
    assert refused.status == 403
    # and a form post that carries the session cookie but no CSRF token is refused
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    with httpx.Client(base_url=console_site.url, cookies=cookies) as forged:
        answer = forged.post("/console/logout")
        assert answer.status_code == 403
        assert forged.get("/console/").status_code == 200  # still signed in
