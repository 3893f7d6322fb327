"""``tain source``: pull source jobs that mirror an rsync or HTTP upstream (site admins)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from tain.cli.common import DEFAULT_SITE, JsonOpt, RepoOpt, SiteOpt, TokenOpt
from tain.cli.output import Col, emit_json, emit_record, emit_rows, human_size, say, timestamp
from tain.core.sourcespec import parse_spec
from tain.errors import TainError, UsageError
from tain.sources.client import SourceClient

POLL_SECONDS = 0.5
NameArg = Annotated[str, typer.Argument(help="Source job name.")]
Many = Annotated[list[str] | None, typer.Option()]

SOURCE_COLUMNS = (
    Col("name", "name"),
    Col("repo", "repo"),
    Col("state", "state"),
    Col("schedule", "schedule"),
    Col("last end (UTC)", "last_end", timestamp),
    Col("next run (UTC)", "next_run", timestamp),
    Col("files", "repo_files", justify="right"),
    Col("size", "repo_bytes", human_size, justify="right"),
    Col("last error", "last_error"),
)
RUN_COLUMNS = (
    Col("run", "id", justify="right"),
    Col("state", "state"),
    Col("started (UTC)", "started_at", timestamp),
    Col("ended (UTC)", "ended_at", timestamp),
    Col("files", "files", justify="right"),
    Col("bytes", "bytes", human_size, justify="right"),
    Col("revision", "revision", justify="right"),
    Col("error", "error"),
)

source_app = typer.Typer(help="Mirror rsync or HTTP upstreams on a schedule.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(source_app, name="source")


@contextmanager
def _connect(site: str, token: str | None) -> Iterator[SourceClient]:
    client = SourceClient(site, token or None)
    try:
        yield client
    finally:
        client.close()


@source_app.command("add")
def add(
    name: NameArg,
    repo: RepoOpt,
    rsync: Annotated[str | None, typer.Option("--rsync", help="rsync://HOST/MODULE/PATH")] = None,
    http: Annotated[str | None, typer.Option("--http", help="https://HOST/PATH/")] = None,
    every: Annotated[str | None, typer.Option("--every", help="Interval, e.g. 1h.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="e.g. '0 */4 * * *' (UTC).")] = None,
    jitter: Annotated[str | None, typer.Option("--jitter", help="Random delay, e.g. 5m.")] = None,
    max_delete: Annotated[str, typer.Option(
        "--max-delete", help="Fail instead of deleting more: a count or a percentage.")] = "10%",
    include: Many = None,
    exclude: Many = None,
    index: Annotated[list[str] | None, typer.Option(
        "--index", help="Index file pattern (repeatable; replaces the defaults).")] = None,
    timeout: Annotated[str, typer.Option("--timeout", help="I/O timeout.")] = "10m",
    bwlimit: Annotated[str | None, typer.Option("--bwlimit", help="rsync only.")] = None,
    ok_exit: Annotated[list[int] | None, typer.Option(
        "--ok-exit", help="rsync exit code that counts as success (repeatable).")] = None,
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="Variable of tain serve holding the rsync password.")] = None,
    sha256sums: Annotated[bool, typer.Option(
        "--sha256sums", help="--http names a SHA256SUMS file listing the files.")] = False,
    parallel: Annotated[int, typer.Option("--parallel", help="HTTP downloads at once.")] = 4,
    keep_runs: Annotated[int, typer.Option("--keep-runs", help="Run logs kept.")] = 20,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a job (it runs at once, then on its schedule)."""
    if (rsync is None) == (http is None):
        raise UsageError("give exactly one upstream: --rsync URL or --http URL")
    raw: dict[str, Any] = {
        "name": name, "repo": repo, "kind": "rsync" if rsync else "http",
        "url": rsync or http, "every": every, "cron": cron, "jitter": jitter,
        "max_delete": max_delete, "include": include or None, "exclude": exclude or None,
        "index_patterns": index or None, "timeout": timeout, "bwlimit": bwlimit,
        "ok_exit_codes": ok_exit or None, "password_env": password_env,
        "http_mode": "sha256sums" if sha256sums else "index", "parallel": parallel,
        "keep_runs": keep_runs,
    }
    spec = parse_spec({k: v for k, v in raw.items() if v is not None})  # fail before sending
    with _connect(site, token) as client:
        body = client.add_source(spec.to_json())
    _done(body, f"added source {name} ({spec.schedule.describe()})", as_json)


@source_app.command("list")
def list_(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List the jobs with their state, last and next run and repository size."""
    with _connect(site, token) as client:
        emit_rows(client.list_sources(), SOURCE_COLUMNS, as_json=as_json)


@source_app.command("show")
def show(
    name: NameArg,
    log: Annotated[bool, typer.Option("--log", help="Print the log of the last run.")] = False,
    run: Annotated[int | None, typer.Option("--run", help="Print the log of this run.")] = None,
    site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show a job, its recent runs, or a run's log."""
    with _connect(site, token) as client:
        body = client.get_source(name)
        if log or run is not None:
            runs = body.get("runs") or []
            if run is None and not runs:
                raise UsageError(f"source {name} has not run yet")
            one = client.get_source_run(name, run if run is not None else runs[0]["id"])
            if as_json:
                emit_json(one)
            else:
                typer.echo(one.get("log", ""), nl=False)
            return
    if as_json:
        emit_json(body)
        return
    runs = body.pop("runs", [])
    emit_record(body, as_json=False)
    if runs:
        say("")
        emit_rows(runs, RUN_COLUMNS, as_json=False)


@source_app.command("remove")
def remove(name: NameArg, site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None) -> None:
    """Remove a job and its run logs (the repository and its revisions stay)."""
    with _connect(site, token) as client:
        client.remove_source(name)
    say(f"removed source {name}")


def _action(action: str, done: str) -> Any:
    def command(name: NameArg, site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None,
                as_json: JsonOpt = False) -> None:
        with _connect(site, token) as client:
            body = client.source_action(name, action)
        _done(body, f"{done} source {name}", as_json)
    return command


source_app.command("pause", help="Stop scheduling a job (a running run finishes).")(
    _action("pause", "paused"))
source_app.command("resume", help="Schedule a paused job again.")(_action("resume", "resumed"))


@source_app.command("run-now")
def run_now(
    name: NameArg,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to end.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 3600,
    site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Run a job as soon as a scheduler is free; --wait: until it ends (exit 1 if it fails)."""
    with _connect(site, token) as client:
        before = _last_run_id(client.get_source(name, runs=1))
        body = client.source_action(name, "run")
        if not wait:
            _done(body, f"queued source {name}", as_json)
            return
        with _spinner(f"waiting for source {name}"):
            run = _wait_for_run(client, name, before, timeout)
    if as_json:
        emit_json(run)
    else:
        say(f"source {name}: run {run['id']} {run['state']}, revision "
            f"{run.get('revision') or 'unchanged'}, {run.get('files')} files "
            f"({human_size(run.get('bytes'))}) transferred")
    if run["state"] != "success":
        raise TainError(f"source {name}: run {run['id']} failed: {run.get('error')}")


def _last_run_id(body: dict[str, Any]) -> int:
    runs = body.get("runs") or []
    return int(runs[0]["id"]) if runs else 0


def _wait_for_run(client: SourceClient, name: str, after: int, timeout: float
                  ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.get_source(name, runs=1).get("runs") or []
        if runs and int(runs[0]["id"]) > after and runs[0].get("state") != "syncing":
            return dict(runs[0])
        time.sleep(POLL_SECONDS)
    raise TainError(f"source {name}: no finished run after {timeout:g} s",
                    hint="see 'tain source show' later")


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    """A spinner on a terminal, nothing when stderr is piped."""
    if not sys.stderr.isatty():
        yield
        return
    with Console(stderr=True).status(text):
        yield


def _done(body: dict[str, Any], message: str, as_json: bool) -> None:
    if as_json:
        emit_json(body)
    else:
        say(message)
