"""Options every site command shares, and the one way commands get a client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from tain.client import SiteClient

DEFAULT_SITE = "http://127.0.0.1:8080"

SiteOpt = Annotated[
    str,
    typer.Option(
        "--site", envvar="TAIN_SITE", help="URL of the site.", show_envvar=True,
        rich_help_panel="Site",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="TAIN_TOKEN", help="API token.", show_default=False,
        show_envvar=True, rich_help_panel="Site",
    ),
]
RepoOpt = Annotated[
    str,
    typer.Option(
        "--repo", "-r", envvar="TAIN_REPO", help="Repository name.", show_envvar=True,
        rich_help_panel="Site",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RevOpt = Annotated[
    int | None, typer.Option("--rev", min=1, help="Revision number (default: the head).")
]
MessageOpt = Annotated[str, typer.Option("--message", "-m", help="Revision message.")]


@contextmanager
def connect(site: str, token: str | None) -> Iterator[SiteClient]:
    with SiteClient(site, token or None) as client:
        yield client


def revision_number(body: Any) -> int | None:
    """The revision number in an answer that carries a revision (or is one)."""
    if isinstance(body, dict):
        revision = body.get("revision", body)
        if isinstance(revision, dict):
            revision = revision.get("number")
        if isinstance(revision, int):
            return revision
    return None
