"""``tain push``: mirror a local directory into a repository."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from tain.cli.common import DEFAULT_SITE, JsonOpt, MessageOpt, RepoOpt, SiteOpt, TokenOpt, connect
from tain.cli.output import emit_json, human_size, progress_sink, say, warn
from tain.push.pusher import PushResult, push_directory


def register(app: typer.Typer) -> None:
    app.command("push")(push)


def push(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Directory to push.", exists=True, file_okay=False, dir_okay=True
        ),
    ],
    repo: RepoOpt,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    message: MessageOpt = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; send nothing.")
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Hash cache file (default: in ~/.cache/tain)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the repository's head equal DIRECTORY, sending only changed bytes."""
    with connect(site, token) as client, progress_sink() as progress:
        result = push_directory(
            client, repo, directory, message=message, progress=progress,
            dry_run=dry_run, cache_path=cache,
        )
    for line in result.warnings:
        warn(line)
    if as_json:
        emit_json(dataclasses.asdict(result))
    else:
        say(summary(repo, result))


def summary(repo: str, result: PushResult) -> str:
    counts = f"{result.added} added, {result.changed} changed, {result.deleted} deleted"
    if result.dry_run:
        return f"would push to {repo}: {counts}"
    if result.revision is None:
        return f"{repo} is up to date: nothing to push"
    return (
        f"pushed {repo} revision {result.revision}: {counts}; "
        f"sent {human_size(result.bytes_sent)} in {result.chunks_sent} chunks, "
        f"hashed {human_size(result.bytes_hashed)}"
    )
