"""The monitoring commands: ``tain stats`` and ``tain alerts``."""

from __future__ import annotations

import typer

from tain.cli import alerts, stats


def register(app: typer.Typer) -> None:
    stats.register(app)
    alerts.register(app)
