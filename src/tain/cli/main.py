"""The ``tain`` command: the Typer application and the one place errors are reported.

Commands only raise. ``TainGroup.invoke`` turns a ``TainError`` into one line on stderr
and the error's exit code, and any other exception into one line and exit 1; the
traceback is shown only with ``--debug`` (or ``TAIN_DEBUG=1``).
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from tain import __version__
from tain.cli import (
    admin,
    agent,
    backup,
    mirror,
    monitoring,
    passwd,
    push,
    scrub,
    site,
    sites,
    source,
    status,
    versions,
)
from tain.errors import TainError

DEBUG_KEY = "tain.debug"


class TainGroup(TyperGroup):
    """The root group: every subcommand runs inside its ``invoke``."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except TainError as err:
            _fail(f"error: {err}", err.exit_code, debug=_debug(ctx))
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            hint = "" if _debug(ctx) else " (run with --debug to see the traceback)"
            _fail(f"error: unexpected {reason}{hint}", 1, debug=_debug(ctx))


def _debug(ctx: Any) -> bool:
    return bool(ctx.meta.get(DEBUG_KEY) or ctx.params.get("debug"))


def _fail(line: str, code: int, *, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exc(file=sys.stderr)
    typer.echo(" ".join(line.split()), err=True)
    sys.exit(code)


app = typer.Typer(
    cls=TainGroup,
    name="tain",
    help="tain: verified, versioned copies of file trees on your own sites.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings are paragraphs: rewrapped, not hard-broken
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tain {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="TAIN_DEBUG", help="Show tracebacks of errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Mirror directories into versioned repositories on a tain site."""
    ctx.meta[DEBUG_KEY] = debug


push.register(app)
versions.register(app)
admin.register(app)
passwd.register(app)
site.register(app)
scrub.register(app)
backup.register(app)
status.register(app)
agent.register(app)
monitoring.register(app)
sites.register(app)
source.register(app)
mirror.register(app)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="tain")
