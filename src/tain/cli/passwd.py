"""``tain user passwd``: set a user's password for the web console."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tain.cli.admin import UserArg, user_app
from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt, connect
from tain.cli.output import emit_json, say
from tain.core.paths import check_user_name
from tain.errors import UsageError
from tain.service.passwords import check_new_password


def register(_: typer.Typer) -> None:
    user_app.command("passwd")(user_passwd)


def user_passwd(
    name: UserArg,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin.")] = False,
    clear: Annotated[bool, typer.Option(
        "--clear", help="Remove the password: no console sign-in for this user.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set the password NAME signs in to the web console with (/console/).

    A site admin sets anyone's; a user sets their own. Ends NAME's console sessions."""
    check_user_name(name)
    if clear and password_stdin:
        raise UsageError("--clear and --password-stdin contradict each other")
    password = None if clear else _read_password(password_stdin)
    with connect(site, token) as client:
        body = client.set_password(name, password)
    if as_json:
        emit_json(body)
    else:
        say(f"{'removed the password of' if clear else 'set the password of'} {name}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UsageError("--password-stdin: stdin is empty")
        return check_new_password(line.rstrip("\r\n"))
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password on",
                         hint="pipe it with --password-stdin")
    first = typer.prompt("New password", hide_input=True)
    check_new_password(first)
    if typer.prompt("Repeat it", hide_input=True) != first:
        raise UsageError("the two passwords differ; nothing was changed")
    return str(first)
