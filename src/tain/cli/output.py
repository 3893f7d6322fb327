"""What the CLI prints: Rich tables or JSON on stdout, notes and progress on stderr.

Data goes to stdout, everything else to stderr, so ``tain ... --json | jq`` works.
Progress bars are drawn only when stderr is a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from tain.core.units import human_size as core_human_size
from tain.push.progress import ProgressSink

_PHASES = {
    "scan": "scanning",
    "remote": "reading the remote tree",
    "chunk": "chunking",
    "upload": "uploading",
    "commit": "committing",
}


def plain(value: Any) -> str:
    return "" if value is None else str(value)


def human_size(size: Any) -> str:
    """``1023 B``, ``1.5 KiB``: binary units, one decimal; anything else as plain text."""
    if not isinstance(size, int | float):
        return plain(size)
    return core_human_size(size)


def timestamp(seconds: Any) -> str:
    """An epoch time (seconds) in UTC; other values (ISO strings) as they are."""
    if not isinstance(seconds, int | float):
        return plain(seconds)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def mtime(nanoseconds: Any) -> str:
    return timestamp(nanoseconds / 1e9) if isinstance(nanoseconds, int) else plain(nanoseconds)


def short_digest(value: Any) -> str:
    return plain(value)[:12]


@dataclass(frozen=True, slots=True)
class Col:
    """One table column: its header, the record key and how to show the value."""

    header: str
    key: str
    fmt: Callable[[Any], str] = plain
    justify: Literal["left", "right"] = "left"


def stdout_console() -> Console:
    wide = None if sys.stdout.isatty() else 1000
    return Console(file=sys.stdout, width=wide, highlight=False, soft_wrap=False)


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def emit_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Col]) -> None:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col.header, justify=col.justify, overflow="fold")
    for row in rows:
        table.add_row(*(Text(col.fmt(row.get(col.key))) for col in columns))
    stdout_console().print(table)


def emit_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[Col], *, as_json: bool) -> None:
    """A list as a table, or as JSON with ``--json``."""
    if as_json:
        emit_json(list(rows))
    elif rows:
        emit_table(rows, columns)
    else:
        note("(none)")


def emit_record(record: Mapping[str, Any], *, as_json: bool) -> None:
    """One object as ``key  value`` lines, or as JSON."""
    if as_json:
        emit_json(dict(record))
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in record.items():
        shown = json.dumps(value, default=str) if isinstance(value, dict | list) else plain(value)
        table.add_row(Text(key), Text(shown))
    stdout_console().print(table)


def say(message: str) -> None:
    """A human result line on stdout."""
    typer.echo(message)


def note(message: str) -> None:
    typer.echo(message, err=True)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


class RichProgress:
    """A ``ProgressSink`` drawing one transient bar per phase on stderr."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: TaskID | None = None

    def start(self, phase: str, total: int | None = None) -> None:
        self.finish()
        self._task = self._progress.add_task(_PHASES.get(phase, phase), total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


@contextmanager
def progress_sink() -> Iterator[ProgressSink | None]:
    """Progress bars when stderr is a terminal, nothing when it is piped."""
    if not sys.stderr.isatty():
        yield None
        return
    with RichProgress() as sink:
        yield sink
