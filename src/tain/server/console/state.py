"""The console's per-app state: templates and the session manager (with its counts of
failed sign-ins), made with the app. Made on first use instead, two first requests at
once could each make one, and the failures counted in the one dropped were lost."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tain.core.units import human_size
from tain.server.console.urls import download_url
from tain.service.sessions import SessionManager
from tain.service.site import Site

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@dataclass
class ConsoleState:
    site: Site
    sessions: SessionManager
    templates: Environment


def new_console_state(site: Site) -> ConsoleState:
    return ConsoleState(site, SessionManager(site), _environment())


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console  # set by tain.server.console.install
    return state


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["size"] = lambda n: human_size(n or 0)
    env.filters["utc"] = _utc
    env.filters["ago"] = _ago
    env.globals["download_url"] = download_url
    return env


def _utc(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) if at else "—"


def _ago(seconds: Any) -> str:
    """A duration for people: ``42 s``, ``5 min``, ``3 h``, ``2 d``."""
    s = max(0, int(float(seconds)))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit}"
    return f"{s} s"
