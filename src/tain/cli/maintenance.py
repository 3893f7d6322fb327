"""Site upkeep: the audit log and its verification, garbage collection, retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt, connect
from tain.cli.output import Col, emit_json, emit_record, emit_rows, say, timestamp
from tain.errors import IntegrityError, UsageError

AUDIT_COLUMNS = (
    Col("seq", "seq", justify="right"),
    Col("time (UTC)", "at", timestamp),
    Col("actor", "actor"),
    Col("action", "action"),
    Col("target", "target"),
    Col("details", "details", lambda v: json.dumps(v, sort_keys=True) if v else ""),
)

audit_app = typer.Typer(
    help="Show the audit log; 'tain audit verify' checks its hash chain.",
    invoke_without_command=True,
)
retention_app = typer.Typer(help="Apply retention policies.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.add_typer(retention_app, name="retention")
    app.command("gc")(gc)


@audit_app.callback()
def audit(
    ctx: typer.Context,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this user.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Only this target.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only entries from this time: ISO 8601 (UTC if no zone)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many entries.")] = 100,
    after: Annotated[
        int | None, typer.Option("--after", help="Only entries after this sequence number.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List audit log entries, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    start = parse_since(since)
    with connect(site, token) as client:
        rows = client.audit(
            actor=actor, action=action, target=target, since=start, limit=limit, after=after
        )
    emit_rows(rows, AUDIT_COLUMNS, as_json=as_json)


def parse_since(text: str | None) -> float | None:
    """An ISO 8601 time (UTC unless it names a zone) or epoch seconds, as epoch seconds."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(
            f"--since {text!r} is not a time", hint="use e.g. 2025-01-31 or 2025-01-31T12:00"
        ) from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@audit_app.command("verify")
def audit_verify(
    site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Check the audit log's hash chain; fails when it was tampered with."""
    with connect(site, token) as client:
        body = client.audit_verify()
    problems = [str(p) for p in body.get("problems") or []]
    if as_json:
        emit_json(body)
    elif body.get("ok"):
        say(f"audit log intact: {body.get('entries')} entries")
    else:
        for problem in problems:
            say(f"problem: {problem}")
    if not body.get("ok"):
        raise IntegrityError(
            f"the audit log's hash chain is broken ({len(problems)} problem(s))",
            hint="someone changed the catalog outside tain; restore it from a backup",
        )


def gc(
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete blobs and chunks that no revision uses any more."""
    with connect(site, token) as client:
        emit_record(client.gc(dry_run=dry_run), as_json=as_json)


@retention_app.command("apply")
def retention_apply(
    repo: Annotated[str, typer.Argument(help="Repository name.")],
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drop the revisions REPO's retention policy no longer keeps."""
    with connect(site, token) as client:
        emit_record(client.apply_retention(repo), as_json=as_json)
