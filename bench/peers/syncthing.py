"""Syncthing: two instances on loopback, a send-only folder on one, receive-only on the other.

Both are generated with ``syncthing generate``, then their config.xml is edited before
the first start: GUI/REST and sync listener on 127.0.0.1 only, no global or local
discovery, no relays, no NAT traversal, no usage or crash reporting, no upgrades (the
machine has no internet), and ``setLowPriority`` off (it would lower Syncthing's priority
under the other load of this shared machine). Everything else is the defaults of
Syncthing's config, copied from the generated ``<defaults>`` element.

Folders: ``bulk`` (W1-W5) has the watcher and periodic rescans off and is scanned on
demand through the REST API, so each sync starts when the suite says, like an rsync run;
``latN`` folders (W6) use the watcher with ``fsWatcherDelayS`` = N (10 is the default).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import LOOPBACK, BenchError, Daemon, free_port, wait_until

OPTIONS = {
    "globalAnnounceEnabled": "false",
    "localAnnounceEnabled": "false",
    "relaysEnabled": "false",
    "natEnabled": "false",
    "startBrowser": "false",
    "urAccepted": "-1",
    "autoUpgradeIntervalH": "0",
    "crashReportingEnabled": "false",
    "setLowPriority": "false",
}


@dataclass(frozen=True)
class FolderSpec:
    id: str
    source: Path
    replica: Path
    watcher_delay_s: int | None
    """None: no watcher, no periodic rescan, scanned through the REST API."""
    paused: bool = False


class SyncthingNode:
    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.home = home
        self.gui_port = free_port()
        self.listen_port = free_port()
        self.apikey = secrets.token_hex(16)
        self.device_id = ""
        self.daemon = Daemon(
            f"syncthing {name}",
            ["syncthing", "serve", f"--home={home}", "--no-browser", "--no-restart",
             "--no-upgrade", "--no-default-folder", f"--logfile={home / 'syncthing.log'}"],
            log=home / "stdout.log",
        )

    def generate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run(["syncthing", "generate", f"--home={self.home}", "--no-default-folder"],
                       capture_output=True, timeout=120, check=True)
        self.device_id = subprocess.run(
            ["syncthing", "serve", f"--home={self.home}", "--device-id"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()

    def configure(self, peer: SyncthingNode, folders: list[FolderSpec], *, sender: bool) -> None:
        path = self.home / "config.xml"
        root = ET.parse(path).getroot()
        gui = _child(root, "gui")
        _child(gui, "address").text = f"{LOOPBACK}:{self.gui_port}"
        _child(gui, "apikey").text = self.apikey
        options = _child(root, "options")
        _child(options, "listenAddress").text = f"tcp://{LOOPBACK}:{self.listen_port}"
        for key, value in OPTIONS.items():
            _child(options, key).text = value
        defaults = _child(root, "defaults")
        device = _copy(_child(defaults, "device"))
        device.set("id", peer.device_id)
        device.set("name", peer.name)
        _child(device, "address").text = f"tcp://{LOOPBACK}:{peer.listen_port}"
        root.insert(1, device)
        for number, spec in enumerate(folders):
            root.insert(2 + number, self._folder(_child(defaults, "folder"), spec, peer,
                                                 sender=sender))
        ET.ElementTree(root).write(path)

    def _folder(
        self, template: ET.Element, spec: FolderSpec, peer: SyncthingNode, *, sender: bool
    ) -> ET.Element:
        folder = _copy(template)
        for attr, value in {
            "id": spec.id, "label": spec.id,
            "path": str(spec.source if sender else spec.replica),
            "type": "sendonly" if sender else "receiveonly",
        }.items():
            folder.set(attr, value)
        if sender and spec.watcher_delay_s is None:
            folder.set("fsWatcherEnabled", "false")
            folder.set("rescanIntervalS", "0")
        elif spec.watcher_delay_s is not None:
            folder.set("fsWatcherDelayS", str(spec.watcher_delay_s))
        for old in folder.findall("device"):
            folder.remove(old)
        for device_id in (self.device_id, peer.device_id):
            ET.SubElement(folder, "device", {"id": device_id, "introducedBy": ""})
        _child(folder, "paused").text = "true" if spec.paused else "false"
        return folder

    def config_text(self) -> str:
        text = (self.home / "config.xml").read_text()
        return text.replace(self.apikey, "<api key>")

    def start(self) -> None:
        self.daemon.start()
        wait_until(self._pings, timeout=60, what=f"syncthing {self.name}", interval=0.2)

    def _pings(self) -> bool:
        self.daemon.check_alive()
        try:
            return bool(self.rest("GET", "/rest/system/ping").get("ping") == "pong")
        except OSError:
            return False

    def stop(self) -> None:
        self.daemon.stop()

    def rest(self, method: str, path: str, body: Any = None, timeout: float = 600) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.gui_port}{path}", data=data, method=method,
            headers={"X-API-Key": self.apikey, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def status(self, folder: str) -> dict[str, Any]:
        return dict(self.rest("GET", f"/rest/db/status?folder={urllib.parse.quote(folder)}"))

    def connection_bytes(self, peer: SyncthingNode) -> int:
        """Bytes in + out on the connection to ``peer`` (Syncthing's own counters)."""
        conns = self.rest("GET", "/rest/system/connections")["connections"]
        conn = conns.get(peer.device_id) or {}
        return int(conn.get("inBytesTotal", 0)) + int(conn.get("outBytesTotal", 0))


class SyncthingPair:
    def __init__(self, workdir: Path, folders: list[FolderSpec]) -> None:
        self.dir = workdir / "syncthing"
        self.sender = SyncthingNode("sender", self.dir / "sender")
        self.receiver = SyncthingNode("receiver", self.dir / "receiver")
        self.folders = {f.id: f for f in folders}

    @property
    def pids(self) -> list[int]:
        return [self.sender.daemon.pid, self.receiver.daemon.pid]

    def start(self) -> None:
        for node in (self.sender, self.receiver):
            node.generate()
        for spec in self.folders.values():
            spec.source.mkdir(parents=True, exist_ok=True)
            spec.replica.mkdir(parents=True, exist_ok=True)
        folders = list(self.folders.values())
        self.sender.configure(self.receiver, folders, sender=True)
        self.receiver.configure(self.sender, folders, sender=False)
        self.receiver.start()
        self.sender.start()
        wait_until(self._connected, timeout=90, what="the two syncthing instances to connect",
                   interval=0.25)

    def _connected(self) -> bool:
        conns = self.sender.rest("GET", "/rest/system/connections")["connections"]
        return bool((conns.get(self.receiver.device_id) or {}).get("connected"))

    def stop(self) -> None:
        for node in (self.sender, self.receiver):
            node.stop()

    def config_text(self) -> dict[str, str]:
        return {"sender": self.sender.config_text(), "receiver": self.receiver.config_text()}

    def bytes(self) -> int:
        return self.sender.connection_bytes(self.receiver)

    def unpause(self, folder: str) -> None:
        for node in (self.receiver, self.sender):
            node.rest("PATCH", f"/rest/config/folders/{folder}", {"paused": False})

    def scan(self, folder: str) -> None:
        """Ask the sender to rescan ``folder`` now; returns when the scan is done."""
        self.sender.rest("POST", f"/rest/db/scan?folder={urllib.parse.quote(folder)}")

    def in_sync(self, folder: str, files: int) -> bool:
        """The receiver holds ``files`` files and as many bytes as the sender, needs
        nothing, and the sender agrees (its view of the receiver is 100% complete)."""
        got = self.receiver.status(folder)
        if got.get("state") != "idle" or got.get("needTotalItems") != 0:
            return False
        if got.get("localFiles") != files:
            return False
        sent = self.sender.status(folder)
        if sent.get("state") != "idle" or sent.get("localFiles") != files:
            return False
        if sent.get("localBytes") != got.get("localBytes"):
            return False
        done = self.sender.rest(
            "GET", f"/rest/db/completion?folder={folder}&device={self.receiver.device_id}"
        )
        return bool(done.get("completion") == 100 and done.get("needItems", 0) == 0
                    and done.get("needBytes", 0) == 0)

    def wait_in_sync(self, folder: str, files: int, *, timeout: float) -> float:
        try:
            return wait_until(lambda: self.in_sync(folder, files), timeout=timeout,
                              what=f"syncthing folder {folder}", interval=0.1)
        except BenchError:
            got = self.receiver.status(folder)
            keys = ("state", "needTotalItems", "localFiles", "localBytes", "globalFiles",
                    "pullErrors")
            raise BenchError(
                f"syncthing folder {folder} not in sync after {timeout:.0f} s: "
                + ", ".join(f"{k}={got.get(k)}" for k in keys)
            ) from None


def _child(parent: ET.Element, tag: str) -> ET.Element:
    found = parent.find(tag)
    if found is None:
        found = ET.SubElement(parent, tag)
    return found


def _copy(element: ET.Element) -> ET.Element:
    return ET.fromstring(ET.tostring(element))
