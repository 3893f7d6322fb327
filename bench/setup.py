"""The suite's setup step: the peer tools from Debian's packages, matplotlib from PyPI.

Installs only what is missing (``apt-get update`` first, as root) and says what it did.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable

# binary -> Debian package
PACKAGES = {
    "rsync": "rsync",
    "lsyncd": "lsyncd",
    "syncthing": "syncthing",
    "nginx": "nginx",
    "h2load": "nghttp2-client",
    "/usr/bin/time": "time",
    "curl": "curl",
}
MATPLOTLIB = "matplotlib>=3.8,<4"


def missing_packages() -> list[str]:
    return sorted({pkg for binary, pkg in PACKAGES.items() if shutil.which(binary) is None})


def ensure_tools(log: Callable[[str], None]) -> None:
    missing = missing_packages()
    if missing:
        if os.geteuid() != 0:
            raise SystemExit(f"missing {', '.join(missing)}: run as root or apt-get install them")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        log(f"setup: apt-get install {' '.join(missing)}")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env,
                       timeout=1200)
    if importlib.util.find_spec("matplotlib") is None:
        log(f"setup: pip install {MATPLOTLIB}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", MATPLOTLIB], check=True,
                       timeout=1200)
    still = missing_packages()
    if still:
        raise SystemExit(f"still missing after setup: {', '.join(still)}")
