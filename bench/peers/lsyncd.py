"""lsyncd: inotify + rsync, its ``default.rsync`` layer pushing to the suite's rsync
daemon (so its rsyncs cross loopback like a real mirror's). ``delay`` is how long lsyncd
collects events before it runs rsync: 15 s by default, 1 s as its fastest sensible
setting (lsyncd's manual: "delay ... default 15")."""

from __future__ import annotations

from pathlib import Path

from bench.procs import Daemon

DEFAULT_DELAY_S = 15


def config_text(source: Path, target_url: str, delay_s: int | None, state: Path) -> str:
    delay = "" if delay_s is None else f"    delay = {delay_s},\n"
    return (
        "settings {\n"
        f'    logfile = "{state / "lsyncd.log"}",\n'
        f'    statusFile = "{state / "lsyncd.status"}",\n'
        "    nodaemon = true,\n"
        "}\n"
        "sync {\n"
        "    default.rsync,\n"
        f'    source = "{source}/",\n'
        f'    target = "{target_url}",\n'
        f"{delay}"
        "    rsync = {\n"
        "        archive = true,\n"
        "        whole_file = false,\n"
        "    },\n"
        "}\n"
    )


class Lsyncd:
    def __init__(self, name: str, source: Path, target_url: str, delay_s: int | None,
                 state: Path) -> None:
        self.state = state
        state.mkdir(parents=True, exist_ok=True)
        self.config = config_text(source, target_url, delay_s, state)
        self.conf_path = state / "lsyncd.conf.lua"
        self.daemon = Daemon(name, ["lsyncd", "-nodaemon", str(self.conf_path)],
                             log=state / "lsyncd.out")

    def start(self) -> None:
        self.conf_path.write_text(self.config)
        self.daemon.start()

    def stop(self) -> None:
        self.daemon.stop()
