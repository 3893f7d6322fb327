"""The progress hook of a push: the CLI plugs in progress bars, tests a recorder."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    """Phases run one after another: ``start``, any number of ``advance``, ``finish``."""

    def start(self, phase: str, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """A sink that ignores everything."""

    def start(self, phase: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass
