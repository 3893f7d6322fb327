"""Mirror latency on loopback: time from a committed PUT on the primary until the
mirror serves the new bytes (default mirror settings: long-poll 30s, poll 60s).

    .venv/bin/python -m bench.mirror_latency [ROUNDS]
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.mirror.conftest import Sites


def main(rounds: int = 20) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sites = Sites(Path(tmp), {})
        try:
            primary = sites.new("primary")
            with primary.client() as c:
                c.post("/api/v1/repos", json={"name": "deb"})
            site_dir, token, port = sites.create("mirror", mirror_of=primary)
            config = site_dir / "tain.toml"
            config.write_text(config.read_text().replace('poll = "1s"', 'poll = "60s"'))
            mirror = sites.start(site_dir, token, port)
            samples = []
            with primary.client() as p, mirror.client() as m:
                for i in range(rounds):
                    data = f"small change {i}\n".encode()
                    start = time.perf_counter()
                    p.put("/deb/file.txt", content=data,
                          headers={"X-Tain-SHA256": hashlib.sha256(data).hexdigest()}
                          ).raise_for_status()
                    committed = time.perf_counter()
                    while m.get("/deb/file.txt").content != data:
                        time.sleep(0.005)
                    samples.append((time.perf_counter() - committed,
                                    time.perf_counter() - start))
            after = sorted(s[0] for s in samples)
            total = sorted(s[1] for s in samples)
            print(f"{rounds} rounds, warm cache, loopback, 2 shared cores")
            for label, values in (("commit acknowledged", after), ("PUT sent", total)):
                print(f"{label} -> served by the mirror: median "
                      f"{statistics.median(values) * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms")
        finally:
            sites.stop_all()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
