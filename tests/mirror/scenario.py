"""The network the health and redirector tests share: a primary that is also the
redirector ("a", eu), an in-sync mirror ("b", us), a mirror one revision behind ("c",
eu, carrying only "pub"), one serving wrong bytes and lacking "priv" ("d", us) and
one that is down ("e", ap)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tain.mirror.health import HealthChecker
from tests.catalog.conftest import FakeClock
from tests.conftest import free_port
from tests.e2e.protocol import push_files
from tests.mirror.network import Member

REV1 = {"a.txt": b"alpha " * 50, "docs/b.txt": b"beta " * 40}
REV2 = {"c.bin": random.Random(2).randbytes(3000)}
SECRET = {"secret.txt": b"s3cret"}
EU, US, AP, NOWHERE = "10.1.0.5", "10.2.0.5", "10.3.0.5", "192.0.2.1"


@dataclass
class Network:
    a: Member
    b: Member
    c: Member
    d: Member
    e_url: str
    clock: FakeClock
    checker: HealthChecker
    http: httpx.Client

    def round(self, seconds: float = 30.0) -> None:
        """Let ``seconds`` pass, then run one round of checks."""
        self.clock.advance(seconds)
        assert self.checker.run_once()

    def sites(self) -> dict[str, dict[str, object]]:
        with self.a.client() as c:
            answer = c.get("/api/v1/sites")
        answer.raise_for_status()
        return {s["name"]: s for s in answer.json()["sites"]}

    def rotation(self, repo: str = "pub") -> dict[str, bool]:
        """Site name → in rotation for ``repo`` (False when it has no row for it)."""
        out = {}
        for name, body in self.sites().items():
            rows = [r for r in body["repos"] if r["repo"] == repo]  # type: ignore[attr-defined]
            out[name] = bool(rows and rows[0]["in_rotation"])
        return out

    def dl(self, path: str, client_ip: str | None = None, token: str | None = None,
           **params: str) -> httpx.Response:
        headers = {"X-Forwarded-For": client_ip} if client_ip else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.get(f"{self.a.url}/dl/{path}", headers=headers, params=params)


def redirector_config(b: Member, e_url: str, c_url: str, d_url: str) -> str:
    return f"""
[redirector]
enabled = true
name = "a"
region = "eu"
primary = true
check_interval = "1h"
stale_after = "10m"
trusted_proxies = ["127.0.0.0/8"]

[redirector.regions]
"10.1.0.0/16" = "eu"
"10.2.0.0/16" = "us"
"10.3.0.0/16" = "ap"

[redirector.neighbours]
ap = ["us"]

[[sites]]
name = "b"
url = "{b.url}"
region = "us"
token = "{b.token}"

[[sites]]
name = "c"
url = "{c_url}"
region = "eu"
repos = ["pub"]

[[sites]]
name = "d"
url = "{d_url}"
region = "us"

[[sites]]
name = "e"
url = "{e_url}"
region = "ap"
"""


def _push(member: Member, repo: str, files: dict[str, bytes], *, public: bool = True,
          create: bool = False) -> None:
    with member.client() as c:
        if create:
            c.post("/api/v1/repos", json={"name": repo, "public": public}).raise_for_status()
        push_files(c, repo, files)


@contextmanager
def network(root: Path) -> Iterator[Network]:
    clock = FakeClock()
    a = Member(root, "a", clock=clock)
    b, c, d = Member(root, "b"), Member(root, "c"), Member(root, "d")
    e_url = f"http://127.0.0.1:{free_port()}"
    a.configure(redirector_config(b, e_url, c.url, d.url))
    members = [b, c, d, a]
    try:
        for m in members:
            m.start()
        assert a.app is not None
        a.app.state.health.stop()  # the tests run the rounds themselves, on a fake clock
        for m in (a, b, c, d):
            _push(m, "pub", REV1, create=True)
        for m in (a, b):
            _push(m, "pub", REV2)
            _push(m, "priv", SECRET, public=False, create=True)
        _push(d, "pub", {path: b"not " + data for path, data in {**REV1, **REV2}.items()})
        assert a.site is not None and a.site.config.redirector is not None
        checker = HealthChecker(a.site, a.site.config.redirector, rng=random.Random(5))
        try:
            with httpx.Client(timeout=30) as http:
                yield Network(a, b, c, d, e_url, clock, checker, http)
        finally:
            checker.release()
    finally:
        for m in members:
            m.stop()
