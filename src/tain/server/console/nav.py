"""The console's menu and overview panels: the two registries a new page or panel is
added to (see docs/console.md, "Adding a page")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tain.server.console.viewer import Viewer


@dataclass(frozen=True)
class NavItem:
    path: str  # below /console
    title: str
    admin_only: bool = False


@dataclass(frozen=True)
class Panel:
    """One box of the overview, refreshed by htmx every few seconds: ``load`` gives
    the values ``panels/<name>.html`` renders."""

    name: str
    title: str
    load: Callable[[Viewer], dict[str, Any]]
    admin_only: bool = False


NAV: list[NavItem] = [
    NavItem("/", "Overview"),
    NavItem("/repos", "Repositories"),
    NavItem("/stats", "Statistics"),
    NavItem("/account/tokens", "My tokens"),
    NavItem("/users", "Users and access", admin_only=True),
    NavItem("/audit", "Audit log", admin_only=True),
    NavItem("/ops", "Operations", admin_only=True),
]

PANELS: list[Panel] = []


def add_panel(panel: Panel) -> None:
    PANELS.append(panel)


def visible_nav(viewer: Viewer | None) -> list[NavItem]:
    if viewer is None:
        return []
    return [item for item in NAV if viewer.is_admin or not item.admin_only]


def visible_panels(viewer: Viewer) -> list[Panel]:
    return [p for p in PANELS if viewer.is_admin or not p.admin_only]
