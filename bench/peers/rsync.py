"""rsync to an rsync daemon on 127.0.0.1, so the delta algorithm runs (``--no-whole-file``).

The client is ``rsync -a --delete --no-whole-file --stats SRC/ rsync://127.0.0.1:PORT/MOD/``
(``-a --delete`` is how rsync's man page and Debian's mirror scripts make an exact copy;
rsync does not fsync what it writes, tain does). Modules are declared when the daemon is
started; rsyncd re-reads its config for every connection, so later modules work too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.measure import ClientRun, run_timed
from bench.procs import LOOPBACK, Daemon, free_port, port_open, wait_until

CLIENT_FLAGS = ["-a", "--delete", "--no-whole-file", "--stats"]


@dataclass
class RsyncStats:
    sent: int
    received: int
    literal: int
    matched: int


def parse_stats(text: str) -> RsyncStats:
    """The byte counts of ``rsync --stats`` (numbers may carry thousands separators)."""

    def number(label: str) -> int:
        match = re.search(rf"^{label}:\s*([\d,.]+)", text, re.MULTILINE)
        return int(re.sub(r"[,.]", "", match.group(1))) if match else 0

    return RsyncStats(
        sent=number("Total bytes sent"),
        received=number("Total bytes received"),
        literal=number("Literal data"),
        matched=number("Matched data"),
    )


class RsyncDaemon:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "rsyncd"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "rsyncd.conf"
        self.modules: dict[str, Path] = {}
        self.daemon = Daemon(
            "rsync daemon",
            ["rsync", "--daemon", "--no-detach", f"--config={self.conf}",
             f"--port={self.port}", f"--address={LOOPBACK}"],
            log=self.dir / "rsyncd.out",
        )

    def add_module(self, name: str, path: Path) -> str:
        """Serve ``path`` (created if needed) as a writable module; returns its URL."""
        path.mkdir(parents=True, exist_ok=True)
        self.modules[name] = path
        self.conf.write_text(self.config_text())
        return self.url(name)

    def url(self, name: str) -> str:
        return f"rsync://{LOOPBACK}:{self.port}/{name}/"

    def config_text(self) -> str:
        lines = [
            f"pid file = {self.dir / 'rsyncd.pid'}",
            f"log file = {self.dir / 'rsyncd.log'}",
            "use chroot = yes",
            "max connections = 0",
            "",
        ]
        for name, path in self.modules.items():
            lines += [f"[{name}]", f"    path = {path}", "    read only = no",
                      "    uid = root", "    gid = root", ""]
        return "\n".join(lines)

    def start(self) -> None:
        self.conf.write_text(self.config_text())
        self.daemon.start()
        wait_until(lambda: port_open(self.port), timeout=15, what="the rsync daemon")

    def stop(self) -> None:
        self.daemon.stop()

    def sync(self, source: Path, module: str, *, timeout: float) -> tuple[ClientRun, RsyncStats]:
        run = run_timed(["rsync", *CLIENT_FLAGS, f"{source}/", self.url(module)],
                        timeout=timeout).check()
        return run, parse_stats(run.stdout)
