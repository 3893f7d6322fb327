"""Commands on a repository's revisions and files: log, history, diff, get, rollback,
ls, put, rm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tain.cli.common import (
    DEFAULT_SITE,
    JsonOpt,
    MessageOpt,
    RepoOpt,
    RevOpt,
    SiteOpt,
    TokenOpt,
    connect,
    revision_number,
)
from tain.cli.output import (
    Col,
    emit_json,
    emit_rows,
    human_size,
    mtime,
    note,
    say,
    short_digest,
    timestamp,
)
from tain.core.manifest import Entry, Kind
from tain.core.paths import name_of, normalize_path
from tain.errors import UsageError

PathArg = Annotated[str, typer.Argument(help="Path inside the repository.")]

LOG_COLUMNS = (
    Col("rev", "number", justify="right"),
    Col("time (UTC)", "created_at", timestamp),
    Col("author", "author"),
    Col("+", "added", justify="right"),
    Col("~", "modified", justify="right"),
    Col("-", "deleted", justify="right"),
    Col("files", "files", justify="right"),
    Col("size", "bytes", human_size, justify="right"),
    Col("message", "message"),
)
HISTORY_COLUMNS = (
    Col("from", "rev_from", justify="right"),
    Col("until", "rev_to", lambda v: "head" if v is None else str(v), justify="right"),
    Col("kind", "kind"),
    Col("size", "size", human_size, justify="right"),
    Col("modified (UTC)", "mtime_ns", mtime),
    Col("sha256", "sha256", short_digest),
    Col("target", "target"),
)
DIFF_COLUMNS = (
    Col("status", "status"),
    Col("path", "path"),
    Col("old sha256", "old_sha256", short_digest),
    Col("new sha256", "new_sha256", short_digest),
    Col("size", "size", human_size, justify="right"),
)
LS_COLUMNS = (
    Col("kind", "kind"),
    Col("mode", "mode", lambda v: f"{v:04o}" if isinstance(v, int) else ""),
    Col("size", "size", human_size, justify="right"),
    Col("modified (UTC)", "mtime_ns", mtime),
    Col("sha256", "sha256", short_digest),
    Col("path", "shown"),
)


def register(app: typer.Typer) -> None:
    for command in (log, history, diff, get, rollback, ls, put, rm):
        app.command(command.__name__)(command)


def log(
    repo: RepoOpt,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many revisions.")] = 50,
    before: Annotated[
        int | None, typer.Option("--before", help="Only revisions older than this one.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List revisions, newest first."""
    with connect(site, token) as client:
        rows = client.revisions(repo, limit=limit, before=before)
    emit_rows(rows, LOG_COLUMNS, as_json=as_json)


def history(
    path: PathArg,
    repo: RepoOpt,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List every version of one path, oldest first."""
    with connect(site, token) as client:
        rows = client.history(repo, normalize_path(path))
    emit_rows(rows, HISTORY_COLUMNS, as_json=as_json)


def diff(
    from_rev: Annotated[int, typer.Argument(metavar="R1", help="Older revision.")],
    to_rev: Annotated[int, typer.Argument(metavar="R2", help="Newer revision.")],
    repo: RepoOpt,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only below this path.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what changed between two revisions."""
    with connect(site, token) as client:
        body = client.diff(repo, from_rev, to_rev, prefix=prefix)
    if as_json:
        emit_json(body)
        return
    emit_rows([_diff_row(c) for c in body.get("changes", [])], DIFF_COLUMNS, as_json=False)


def _diff_row(change: dict[str, Any]) -> dict[str, Any]:
    old, new = change.get("old") or {}, change.get("new") or {}
    size = new.get("size", old.get("size")) if (new or old).get("kind") == "file" else None
    return {
        "status": change.get("status"), "path": change.get("path"),
        "old_sha256": old.get("sha256"), "new_sha256": new.get("sha256"), "size": size,
    }


def get(
    path: PathArg,
    repo: RepoOpt,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    rev: RevOpt = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Where to write; '-' for stdout (default: ./NAME)."),
    ] = None,
    verify: Annotated[bool, typer.Option(
        help="Check the signed head statement, manifest and bytes (needs --key).")] = False,
    key: Annotated[str | None, typer.Option(
        help="Pinned signing key: fingerprint or public key (see 'tain repo show').")] = None,
    state_file: Annotated[Path | None, typer.Option(
        help="Where --verify remembers the newest revision seen (rollback check).")] = None,
) -> None:
    """Download one file, verifying its SHA-256 (--verify: and the site's signatures)."""
    path = normalize_path(path)
    if verify or key:
        _verified(site, token, repo, path, output, key, state_file)
        return
    with connect(site, token) as client:
        if output == "-":
            client.download_to(repo, path, typer.get_binary_stream("stdout"), rev=rev)
            return
        dest = Path(output) if output else Path.cwd() / name_of(path)
        if dest.is_dir():
            dest = dest / name_of(path)
        result = client.download(repo, path, dest, rev=rev)
    note(f"{path} -> {dest} ({human_size(result.size)}, sha256 {result.sha256})")


def _verified(site: str, token: str | None, repo: str, path: str, output: str | None,
              key: str | None, state_file: Path | None) -> None:
    from tain.cli.mirror import verified_get

    if not key:
        raise UsageError("--verify needs --key FINGERPRINT (see 'tain repo show')")
    dest = None if output == "-" else Path(output) if output else Path.cwd() / name_of(path)
    if dest is not None and dest.is_dir():
        dest = dest / name_of(path)
    note(verified_get(site, token, repo, path, dest, key, state_file))


def rollback(
    repo: RepoOpt,
    to_rev: Annotated[int, typer.Option("--to-rev", min=1, help="Revision to go back to.")],
    path: Annotated[
        str | None, typer.Argument(help="Only this path (default: the whole repository).")
    ] = None,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    message: MessageOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Make a new revision with the content of an older one."""
    target = normalize_path(path) if path else None
    with connect(site, token) as client:
        body = client.rollback(repo, to_rev, path=target, message=message)
    if as_json:
        emit_json(body)
        return
    what = target or repo
    say(f"rolled back {what} to revision {to_rev}: now revision {revision_number(body)}")


def ls(
    repo: RepoOpt,
    path: Annotated[str, typer.Argument(help="Directory or file (default: the root).")] = "",
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    rev: RevOpt = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="Everything below, not just children.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List a directory of a revision."""
    target = normalize_path(path, allow_root=True)
    with connect(site, token) as client:
        if recursive:
            entries = list(client.iter_tree(repo, rev=rev, prefix=target or None))
        elif target and (entry := client.entry(repo, target, rev=rev)).kind is not Kind.DIR:
            entries = [entry]
        else:
            entries = client.list_dir(repo, target, rev=rev)
    rows = [_ls_row(e) for e in entries]
    emit_rows([e.to_json() for e in entries] if as_json else rows, LS_COLUMNS, as_json=as_json)


def _ls_row(entry: Entry) -> dict[str, Any]:
    shown = entry.path + ("/" if entry.kind is Kind.DIR else "")
    if entry.kind is Kind.SYMLINK:
        shown = f"{entry.path} -> {entry.target}"
    size = entry.size if entry.kind is Kind.FILE else None
    return {**entry.to_json(), "kind": entry.kind.value, "size": size, "shown": shown}


def put(
    local_file: Annotated[
        Path, typer.Argument(help="Local file.", exists=True, dir_okay=False, readable=True)
    ],
    path: PathArg,
    repo: RepoOpt,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    message: MessageOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Upload one whole file to PATH as a new revision."""
    target = normalize_path(path)
    with connect(site, token) as client:
        body = client.put_file(repo, target, local_file, message=message or None)
    if as_json:
        emit_json(body)
        return
    say(f"put {target} ({human_size(body.get('size'))}): revision {revision_number(body)}")


def rm(
    path: PathArg,
    repo: RepoOpt,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    message: MessageOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Delete a file or a directory tree as a new revision."""
    target = normalize_path(path)
    with connect(site, token) as client:
        body = client.delete_path(repo, target, message=message or None)
    if as_json:
        emit_json(body)
        return
    number = revision_number(body)
    say(f"deleted {target}" + (f": revision {number}" if number is not None else ""))
