"""``/dl/{repo}/{path}`` on a real network of sites: redirects by region to sites in
rotation that hold the file's version, the mirror list (JSON, HTML), Metalink, access
control, errors; the sites API, ``tain status`` and ``tain sites``."""

from __future__ import annotations

import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from typer.testing import CliRunner

from tain.cli.main import app as tain_app
from tain.mirror.health import HealthChecker
from tests.mirror.scenario import AP, EU, NOWHERE, REV1, REV2, US, Network, network

NS = {"m": "urn:ietf:params:xml:ns:metalink"}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with network(tmp_path_factory.mktemp("net")) as built:
        built.round()
        built.round()
        yield built


def sites_of(answers: list[httpx.Response], net: Network) -> set[str]:
    by_url = {m.url: m.name for m in (net.a, net.b, net.c, net.d)}
    found = set()
    for answer in answers:
        assert answer.status_code == 302, answer.text
        base = answer.headers["location"].split("/pub/")[0].split("/priv/")[0]
        found.add(by_url.get(base, base))
    return found


def test_redirects_by_region_to_sites_holding_the_version(net: Network) -> None:
    assert sites_of([net.dl("pub/a.txt", EU) for _ in range(30)], net) == {"a", "c"}
    # c.bin changed in revision 2, which c lacks
    assert sites_of([net.dl("pub/c.bin", EU) for _ in range(10)], net) == {"a"}
    assert sites_of([net.dl("pub/a.txt", US) for _ in range(10)], net) == {"b"}
    assert sites_of([net.dl("pub/a.txt", AP) for _ in range(10)], net) == {"b"}  # neighbour
    # an unknown region: any site in rotation, never d (wrong bytes) or e (down)
    assert sites_of([net.dl("pub/a.txt", NOWHERE) for _ in range(40)], net) == {"a", "b", "c"}


def test_redirect_headers_and_the_target_serves_the_bytes(net: Network) -> None:
    answer = net.dl("pub/docs/b.txt", US)
    data = REV1["docs/b.txt"]
    sha = hashlib.sha256(data).hexdigest()
    assert answer.headers["location"] == f"{net.b.url}/pub/docs/b.txt"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-tain-sha256"] == sha
    assert answer.headers["digest"] == "SHA-256=" + base64.b64encode(bytes.fromhex(sha)).decode()
    links = answer.headers["link"].split(", ")
    assert {link.split(">")[0].lstrip("<") for link in links} == {
        f"{net.a.url}/pub/docs/b.txt", f"{net.c.url}/pub/docs/b.txt"}
    assert all("rel=duplicate" in link and "pri=" in link for link in links)
    assert httpx.get(answer.headers["location"]).content == data
    head = httpx.head(f"{net.a.url}/dl/pub/docs/b.txt", headers={"X-Forwarded-For": US})
    assert head.status_code == 302 and head.headers["location"] == answer.headers["location"]


def test_mirrorlist_json_and_html(net: Network) -> None:
    as_json = net.dl("pub/c.bin", US, mirrorlist="", format="json")
    assert as_json.status_code == 200 and as_json.headers["cache-control"] == "no-store"
    body = as_json.json()
    assert body["sha256"] == hashlib.sha256(REV2["c.bin"]).hexdigest()
    assert (body["size"], body["since_revision"], body["client_region"]) == (3000, 2, "us")
    assert [(s["name"], s["tier"], s["rank"]) for s in body["sites"]] == [
        ("b", "same_region", 1), ("a", "other", 2)]
    with httpx.Client(base_url=net.a.url) as c:
        by_accept = c.get("/dl/pub/a.txt?mirrorlist", headers={
            "Accept": "application/json", "X-Forwarded-For": EU}).json()
        assert {s["name"] for s in by_accept["sites"][:2]} == {"a", "c"}
        assert [s["name"] for s in by_accept["sites"]][2:] == ["b"]
        page = c.get("/dl/pub/a.txt?mirrorlist", headers={"X-Forwarded-For": EU})
    assert page.headers["content-type"].startswith("text/html")
    assert hashlib.sha256(REV1["a.txt"]).hexdigest() in page.text
    assert f"{net.b.url}/pub/a.txt" in page.text and net.d.url not in page.text


def test_metalink_lists_every_usable_site(net: Network) -> None:
    for answer in (net.dl("pub/a.txt", EU, metalink=""),
                   httpx.get(f"{net.a.url}/dl/pub/a.txt", headers={
                       "Accept": "application/metalink4+xml", "X-Forwarded-For": EU})):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/metalink4+xml")
        root = ET.fromstring(answer.content)
        (file,) = root.findall("m:file", NS)
        assert file.get("name") == "a.txt"
        assert file.findtext("m:size", namespaces=NS) == str(len(REV1["a.txt"]))
        digest = file.find("m:hash", NS)
        assert digest is not None and digest.get("type") == "sha-256"
        assert digest.text == hashlib.sha256(REV1["a.txt"]).hexdigest()
        urls = file.findall("m:url", NS)
        assert [u.get("priority") for u in urls] == ["1", "2", "3"]
        assert {u.text for u in urls} == {f"{m.url}/pub/a.txt" for m in (net.a, net.b, net.c)}
        assert {u.text for u in urls[:2]} == {f"{net.a.url}/pub/a.txt", f"{net.c.url}/pub/a.txt"}


def test_private_repository_needs_a_token(net: Network) -> None:
    anonymous = net.dl("priv/secret.txt", US)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
    assert sites_of([net.dl("priv/secret.txt", US, token=net.a.token)], net) == {"b"}
    assert sites_of([net.dl("priv/secret.txt", EU, token=net.a.token)], net) == {"a"}
    with net.a.client() as c:
        c.post("/api/v1/users", json={"name": "eve"}).raise_for_status()
        eve = c.post("/api/v1/tokens", json={"user": "eve"}).json()["token"]
    assert net.dl("priv/secret.txt", US, token=eve).status_code == 403
    # the row is now cached, so this anonymous request is answered on the event loop
    assert net.dl("priv/secret.txt", US).status_code == 401
    # the sites API leaves out repositories the caller cannot read
    visible = httpx.get(f"{net.a.url}/api/v1/sites").json()["sites"]
    assert {r["repo"] for s in visible for r in s["repos"]} == {"pub"}


@pytest.mark.parametrize(("path", "status", "words"), [
    ("pub/nope.txt", 404, "nope.txt is not in pub"),
    ("pub/docs", 404, "is a directory"),
    ("nope/a.txt", 404, "no repository"),
    ("pub/bad%01name", 400, "control character"),
])
def test_bad_requests(net: Network, path: str, status: int, words: str) -> None:
    answer = httpx.get(f"{net.a.url}/dl/{path}")
    assert answer.status_code == status
    assert words in answer.json()["message"]


def tain(*args: str, url: str, token: str) -> tuple[int, str]:
    result = CliRunner().invoke(tain_app, list(args),
                                env={"TAIN_SITE": url, "TAIN_TOKEN": token, "TAIN_DEBUG": ""})
    return result.exit_code, result.output


def test_status_and_sites_commands(net: Network) -> None:
    code, out = tain("status", "--json", url=net.a.url, token=net.a.token)
    assert code == 1, out  # d serves wrong bytes, e is down
    body = json.loads(out)
    assert [s["name"] for s in body["sites"]] == ["a", "b", "c", "d", "e"]
    assert [s["name"] for s in body["sites"] if s["attention"]] == ["d", "e"]
    assert body["repos"] and body["store"]  # what status showed before is still there

    code, out = tain("status", url=net.a.url, token=net.a.token)
    assert code == 1
    for text in ("sites:", "a (primary)", "DOWN", "wrong bytes", "missing", "1 rev, "):
        assert text in out, (text, out)

    code, out = tain("sites", "--json", url=net.a.url, token=net.a.token)
    assert code == 1 and json.loads(out)[1]["repos"][1]["revision"] == 2

    code, out = tain("sites", url=net.b.url, token=net.b.token)  # b lists no sites
    assert code == 0 and "no sites configured" in out
    code, out = tain("status", url=net.b.url, token=net.b.token)
    assert code == 0 and "sites:" not in out


def test_one_checker_at_a_time(net: Network) -> None:
    assert net.a.site is not None and net.a.site.config.redirector is not None
    other = HealthChecker(net.a.site, net.a.site.config.redirector, holder="other")
    assert not other.run_once()  # the lease is net.checker's
    net.checker.release()
    assert other.run_once()
    assert not net.checker.run_once()
    other.release()
    net.round()


def test_sites_keep_their_state_while_the_primary_cannot_be_read(net: Network) -> None:
    """Run last: it stops and restarts b. Here b plays the primary, and goes down."""
    assert net.a.site is not None
    config = net.a.site.config.redirector
    assert config is not None and config.self_site is not None
    moved = replace(config, self_site=replace(config.self_site, primary=False),
                    sites=tuple(replace(s, primary=s.name == "b") for s in config.sites))
    checker = HealthChecker(net.a.site, moved, holder=net.checker.holder)
    before = net.rotation()
    assert before == {"a": True, "b": True, "c": True, "d": False, "e": False}
    net.b.stop()
    try:
        for _ in range(2):
            net.clock.advance(30)
            assert checker.run_once()
        assert net.rotation() == {**before, "b": False}  # only the site that is down moves
        a_pub = next(r for r in net.sites()["a"]["repos"] if r["repo"] == "pub")
        assert a_pub["reason"].startswith("the primary cannot be read")
    finally:
        checker.release()
        net.b.start()
