"""The admin API of pull sources, for ``tain source`` (a ``SiteClient`` with more verbs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tain.client import API, SiteClient


def _url(name: str, action: str = "") -> str:
    return f"{API}/sources/{quote(name, safe='')}" + (f"/{action}" if action else "")


class SourceClient(SiteClient):
    def list_sources(self) -> list[dict[str, Any]]:
        return list(self._get(f"{API}/sources")["sources"])

    def add_source(self, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(self._json("POST", f"{API}/sources", json=spec))

    def get_source(self, name: str, *, runs: int = 10) -> dict[str, Any]:
        return dict(self._get(_url(name), runs=runs))

    def get_source_run(self, name: str, run_id: int) -> dict[str, Any]:
        return dict(self._get(_url(name, f"runs/{run_id}")))

    def remove_source(self, name: str) -> None:
        self._json("DELETE", _url(name))

    def source_action(self, name: str, action: str) -> dict[str, Any]:
        """``pause``, ``resume`` or ``run`` (run now)."""
        return dict(self._json("POST", _url(name, action)))
