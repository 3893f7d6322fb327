"""Site administration: repositories, users, tokens, grants, and who am I."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tain.cli import maintenance
from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt, connect
from tain.cli.output import Col, emit_json, emit_record, emit_rows, note, say, timestamp
from tain.core.paths import check_repo_name, check_user_name
from tain.errors import UsageError

ROLES = ("read", "write", "admin", "none")
NameArg = Annotated[str, typer.Argument(help="Repository name.")]
UserArg = Annotated[str, typer.Argument(help="User name.")]

REPO_COLUMNS = (
    Col("name", "name"),
    Col("public", "public", lambda v: "yes" if v else "no"),
    Col("head", "head", justify="right"),
    Col("keep last", "keep_last", justify="right"),
    Col("keep days", "keep_days", justify="right"),
    Col("description", "description"),
)
USER_COLUMNS = (
    Col("name", "name"),
    Col("admin", "is_admin", lambda v: "yes" if v else "no"),
    Col("created (UTC)", "created_at", timestamp),
)
TOKEN_COLUMNS = (
    Col("id", "id", justify="right"),
    Col("user", "user"),
    Col("name", "name"),
    Col("created (UTC)", "created_at", timestamp),
    Col("expires (UTC)", "expires_at", timestamp),
    Col("revoked (UTC)", "revoked_at", timestamp),
    Col("last used (UTC)", "last_used_at", timestamp),
)
GRANT_COLUMNS = (Col("user", "user"), Col("repo", "repo"), Col("role", "role"))

repo_app = typer.Typer(help="Create, list, change and delete repositories.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(repo_app, name="repo")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.command("grant")(grant)
    app.command("grants")(grants)
    app.command("whoami")(whoami)
    maintenance.register(app)


@repo_app.command("create")
def repo_create(
    name: NameArg,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    public: Annotated[bool, typer.Option("--public", help="Anyone may read it.")] = False,
    description: Annotated[str, typer.Option("--description", help="One line.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a repository."""
    with connect(site, token) as client:
        body = client.create_repo(check_repo_name(name), public=public, description=description)
    _done(body, f"created repository {name}", as_json)


@repo_app.command("list")
def repo_list(
    site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """List the repositories you may read."""
    with connect(site, token) as client:
        emit_rows(client.list_repos(), REPO_COLUMNS, as_json=as_json)


@repo_app.command("show")
def repo_show(
    name: NameArg, site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Show a repository's settings and head revision."""
    with connect(site, token) as client:
        emit_record(client.get_repo(name), as_json=as_json)


@repo_app.command("set")
def repo_set(
    name: NameArg,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    public: Annotated[
        bool | None, typer.Option("--public/--private", help="Who may read it.", show_default=False)
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", min=1, help="Keep the last N revisions.")
    ] = None,
    keep_days: Annotated[
        float | None, typer.Option("--keep-days", min=0, help="Keep revisions of D days.")
    ] = None,
    no_keep_last: Annotated[bool, typer.Option("--no-keep-last", help="No count limit.")] = False,
    no_keep_days: Annotated[bool, typer.Option("--no-keep-days", help="No age limit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Change a repository's visibility, description or retention policy."""
    changes = _repo_changes(public, description, keep_last, keep_days, no_keep_last, no_keep_days)
    with connect(site, token) as client:
        body = client.update_repo(name, changes)
    _done(body, f"updated repository {name}", as_json)


def _repo_changes(
    public: bool | None,
    description: str | None,
    keep_last: int | None,
    keep_days: float | None,
    no_keep_last: bool,
    no_keep_days: bool,
) -> dict[str, Any]:
    if (keep_last is not None and no_keep_last) or (keep_days is not None and no_keep_days):
        raise UsageError("--keep-X and --no-keep-X contradict each other")
    changes: dict[str, Any] = {}
    for key, value in (("public", public), ("description", description),
                       ("keep_last", keep_last), ("keep_days", keep_days)):
        if value is not None:
            changes[key] = value
    for key, clear in (("keep_last", no_keep_last), ("keep_days", no_keep_days)):
        if clear:
            changes[key] = None
    if not changes:
        raise UsageError("nothing to change", hint="see 'tain repo set --help'")
    return changes


@repo_app.command("delete")
def repo_delete(
    name: NameArg,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete it.")] = False,
) -> None:
    """Delete a repository with all its revisions."""
    if not yes:
        raise UsageError(
            f"deleting {name} removes all its revisions", hint="add --yes to confirm"
        )
    with connect(site, token) as client:
        client.delete_repo(name)
    say(f"deleted repository {name}")


@user_app.command("add")
def user_add(
    name: UserArg,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make a site admin.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (then give them a token and grants)."""
    with connect(site, token) as client:
        body = client.create_user(check_user_name(name), is_admin=admin)
    _done(body, f"created user {name}", as_json)


@user_app.command("list")
def user_list(
    site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """List users."""
    with connect(site, token) as client:
        emit_rows(client.list_users(), USER_COLUMNS, as_json=as_json)


@user_app.command("remove")
def user_remove(name: UserArg, site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None) -> None:
    """Remove a user with their tokens and grants."""
    with connect(site, token) as client:
        client.delete_user(name)
    say(f"removed user {name}")


@token_app.command("create")
def token_create(
    user: UserArg,
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="What the token is for.")] = None,
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", min=0, help="Expire after N days.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token; its secret is printed once, on stdout."""
    with connect(site, token) as client:
        body = client.create_token(user, name=name, expires_in_days=expires_days)
    if as_json:
        emit_json(body)
        return
    note(f"token {body.get('id', '?')} for {user}: keep the secret below, it is shown only once")
    say(str(body.get("token", "")))


@token_app.command("list")
def token_list(
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List tokens (never their secrets)."""
    with connect(site, token) as client:
        emit_rows(client.list_tokens(user), TOKEN_COLUMNS, as_json=as_json)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id.")],
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
) -> None:
    """Revoke a token."""
    with connect(site, token) as client:
        client.revoke_token(token_id)
    say(f"revoked token {token_id}")


def grant(
    user: UserArg,
    repo: NameArg,
    role: Annotated[str, typer.Argument(help="read, write, admin or none.")],
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
) -> None:
    """Give USER a ROLE on REPO ('none' removes the grant)."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}", hint="use read, write, admin or none")
    with connect(site, token) as client:
        client.set_grant(user, repo, None if role == "none" else role)
    say(f"{user} has no role on {repo}" if role == "none" else f"{user} may {role} {repo}")


def grants(
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user.")] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="Only this repository.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List grants."""
    with connect(site, token) as client:
        emit_rows(client.list_grants(user=user, repo=repo), GRANT_COLUMNS, as_json=as_json)


def whoami(site: SiteOpt = DEFAULT_SITE, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show the user your token belongs to and their grants."""
    with connect(site, token) as client:
        body = client.whoami()
    if as_json:
        emit_json(body)
        return
    admin = " (site admin)" if body.get("is_admin") else ""
    say(f"{body.get('user')}{admin} on {site}")
    if body.get("grants"):
        emit_rows(body["grants"], GRANT_COLUMNS, as_json=False)


def _done(body: Any, message: str, as_json: bool) -> None:
    if as_json:
        emit_json(body)
    else:
        say(message)
