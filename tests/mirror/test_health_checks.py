"""Content-level health checks against real sites on loopback: a site that is down,
one that is stale, one that serves wrong bytes, one whose blob rots on disk; each leaves
the rotation after two failed checks and comes back after two good ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.mirror.scenario import EU, REV1, REV2, US, network


def test_checks_take_sites_out_of_rotation_and_back(tmp_path: Path) -> None:
    with network(tmp_path) as net:
        net.round()
        sites = net.sites()
        assert net.rotation() == {"a": True, "b": True, "c": True, "d": False, "e": False}
        assert net.rotation("priv") == {"a": True, "b": True, "c": False, "d": False,
                                        "e": False}
        assert [r["repo"] for r in sites["c"]["repos"]] == ["pub"]  # c carries only pub
        a, b, c, d, e = (sites[n] for n in "abcde")
        assert a["up"] and a["self"] and a["primary"] and not a["attention"]
        assert b["up"] and b["version"] and not b["attention"] and b["in_rotation"]
        assert [(r["repo"], r["revision"], r["lag_revisions"]) for r in b["repos"]] == [
            ("priv", 1, 0), ("pub", 2, 0)]
        c_pub = next(r for r in c["repos"] if r["repo"] == "pub")
        assert (c_pub["revision"], c_pub["lag_revisions"], c_pub["lag_seconds"]) == (1, 1, 30.0)
        assert c_pub["reason"] == "ok" and not c["attention"]  # fresh enough
        d_priv = next(r for r in d["repos"] if r["repo"] == "priv")
        assert d_priv["reason"].startswith("missing") and d["attention"]
        d_pub = next(r for r in d["repos"] if r["repo"] == "pub")
        assert d_pub["reason"].startswith("wrong bytes:") and not d_pub["ok"]
        assert e["up"] is False and e["reason"].startswith("down: cannot reach")
        assert e["attention"] and not e["in_rotation"]

        # c stays one revision behind: after 10 minutes it is stale, and out after two checks
        net.round(700)
        assert net.rotation()["c"]  # one failure is not enough
        net.round()
        assert not net.rotation()["c"]
        c_pub = next(r for r in net.sites()["c"]["repos"] if r["repo"] == "pub")
        assert c_pub["reason"].startswith("stale: 1 revision(s) behind for 760 s")

        # b's blobs rot on its disk: b refuses to serve them (500), so it fails its checks
        assert net.a.site is not None
        originals = {}
        for data in {**REV1, **REV2}.values():
            sha = hashlib.sha256(data).hexdigest()
            blob = net.b.blob_file(sha)
            originals[blob] = blob.read_bytes()
            blob.chmod(0o644)
            blob.write_bytes(b"rotten" + data[6:])
        net.round()
        assert net.rotation()["b"]
        net.round()
        assert net.rotation() == {"a": True, "b": False, "c": False, "d": False, "e": False}
        b_pub = next(r for r in net.sites()["b"]["repos"] if r["repo"] == "pub")
        assert b_pub["reason"].startswith("sample ") and "no good copy" in b_pub["reason"]
        for _ in range(10):  # never to a site out of rotation: a from every region
            for ip in (EU, US):
                answer = net.dl("pub/a.txt", ip)
                assert answer.headers["location"].startswith(net.a.url), ip

        # repaired: back after two good checks
        for blob, data in originals.items():
            blob.write_bytes(data)
        net.round()
        assert not net.rotation()["b"]
        net.round()
        assert net.rotation()["b"]
        assert net.dl("pub/a.txt", US).headers["location"].startswith(net.b.url)

        # b goes down, and comes back up
        net.b.stop()
        net.round()
        net.round()
        b_row = net.sites()["b"]
        assert b_row["up"] is False and not b_row["in_rotation"]
        assert b_row["reason"].startswith("down:")
        net.b.start()
        net.round()
        net.round()
        assert net.rotation()["b"] and net.sites()["b"]["up"]

        # the lag history holds one sample per site, repository and round
        with net.a.client() as client:
            history = client.get("/api/v1/sites/history",
                                 params={"repo": "pub", "name": "c"}).json()["samples"]
        assert len(history) == 11
        assert [h["lag_revisions"] for h in history] == [1] * 11
        assert history[-1]["lag_seconds"] > history[0]["lag_seconds"]

