"""``tain agent``: run the mirror agent, show its status; ``tain agents``: the agents a
site knows from their heartbeats.

``tain agent DIR --site URL ...`` is short for ``tain agent run DIR ...``: a first word
that is not a subcommand runs ``run`` (``tain agent run status`` mirrors a directory
named "status"). Likewise ``tain agents`` is ``tain agents list``. The agent itself is
imported only by the commands that run it, so other commands start as fast as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tain.cli.common import DEFAULT_SITE, JsonOpt, SiteOpt, TokenOpt, connect
from tain.cli.output import Col, emit_json, emit_record, emit_rows, say, timestamp
from tain.errors import NotFound


class _DefaultCommandGroup(TyperGroup):
    """A group that runs ``default_command`` when the first word is not a subcommand
    (and, with ``default_when_empty``, when there is no word at all)."""

    default_command = ""
    default_when_empty = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and self.default_when_empty:
            args = [self.default_command]
        elif args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return list(super().parse_args(ctx, args))


class AgentGroup(_DefaultCommandGroup):
    default_command = "run"


class AgentsGroup(_DefaultCommandGroup):
    default_command = "list"
    default_when_empty = True


agent_app = typer.Typer(
    cls=AgentGroup, no_args_is_help=True,
    help="Mirror a directory into a repository as it changes (see docs/agent.md).",
)
agents_app = typer.Typer(
    cls=AgentsGroup, help="The agents a site knows, from their heartbeats.",
)


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent", cls=AgentGroup)
    app.add_typer(agents_app, name="agents", cls=AgentsGroup)


StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="State directory (default: ~/.local/state/tain/agent/...)."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file describing one or more sources.",
                 exists=True, dir_okay=False),
]


@agent_app.command("run")
def run(
    directory: Annotated[
        Path | None, typer.Argument(help="Directory to mirror.", file_okay=False)
    ] = None,
    site: Annotated[
        list[str] | None,
        typer.Option("--site", envvar="TAIN_SITE", show_envvar=True,
                     help="Site URL; repeat it for failover, in order of preference."),
    ] = None,
    repo: Annotated[
        str | None, typer.Option("--repo", "-r", envvar="TAIN_REPO", help="Repository name.")
    ] = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
    bwlimit: Annotated[
        str | None, typer.Option("--bwlimit", help="Upload limit in bytes/s, e.g. 10M.")
    ] = None,
    parallel: Annotated[
        int | None, typer.Option("--parallel", min=1, max=64, help="Uploads in flight (4).")
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Ignore pattern (gitignore syntax); repeatable."),
    ] = None,
    no_default_ignores: Annotated[
        bool, typer.Option("--no-default-ignores", help="Mirror editor temporary files too.")
    ] = False,
    heartbeat: Annotated[
        str | None, typer.Option("--heartbeat", help="Heartbeat interval (default 30s).")
    ] = None,
    rescan: Annotated[
        str | None, typer.Option("--rescan", help="Full rescan interval (default 1h).")
    ] = None,
    max_backoff: Annotated[
        str | None, typer.Option("--max-backoff", help="Longest wait for a failed site (30s).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Watch DIRECTORY and push every change to the first site that works."""
    from tain.agent.config import config_from_options  # loaded only for this command
    from tain.agent.runner import run_agent

    agent = config_from_options(
        env=dict(os.environ), directory=directory, sites=site or (), repo=repo, token=token,
        state_dir=state_dir, bwlimit=bwlimit, parallel=parallel, ignore=ignore or (),
        default_ignores=not no_default_ignores, config=config,
        durations={"heartbeat": heartbeat, "rescan": rescan, "max_backoff": max_backoff},
    )
    raise typer.Exit(run_agent(agent))


@agent_app.command("status")
def status(
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue length, last commit, current site and errors of local agents."""
    from tain.agent.config import default_state_base, load_config
    from tain.agent.status import find_state_dirs, read_status

    env = dict(os.environ)
    if config is not None:
        dirs = [s.state_dir for s in load_config(config, env, need_tokens=False).sources]
    else:
        base = state_dir or default_state_base(env)
        dirs = find_state_dirs(base)
        if not dirs:
            raise NotFound(f"no agent state in {base}", hint="pass --state-dir DIR")
    records = [read_status(d) for d in dirs]
    if as_json:
        emit_json(records)
        return
    for number, record in enumerate(records):
        if number:
            say("")
        emit_record(_human_status(record), as_json=False)


def _human_status(r: dict[str, Any]) -> dict[str, Any]:
    running = f"running (pid {r['pid']}), {r['state']}" if r["running"] else r["state"]
    if r["running"] and r["mode"] and r["mode"] != "inotify":
        running += f", {r['mode']} (inotify cannot watch everything)"
    commit = "-"
    if r["last_commit_rev"] is not None:
        commit = (f"revision {r['last_commit_rev']} at {timestamp(r['last_commit_at'])} UTC"
                  f" via {r.get('remote_site') or '?'}")
    out: dict[str, Any] = {
        "directory": r["directory"], "repository": r["repo"], "state": running,
        "queue": f"{r['queue_length']} path(s), {r['being_written']} being written",
        "current site": r["current_site"] or "-", "sites": " ".join(r["sites"]),
        "last commit": commit,
        "heartbeat": timestamp(r["heartbeat_at"]) + " UTC" if r["heartbeat_at"] else "-",
    }
    if r["heartbeat_error"]:
        out["heartbeat error"] = r["heartbeat_error"]
    if r["last_error"]:
        out["last error"] = f"{r['last_error']} ({timestamp(r['last_error_at'])} UTC)"
    for warning in r["warnings"]:
        out.setdefault("warnings", warning)
    out["agent id"] = r["agent_id"]
    out["state dir"] = r["state_dir"]
    return out


AGENT_COLUMNS = [
    Col("AGENT", "agent_id", lambda v: str(v)[:12]),
    Col("REPO", "repo"),
    Col("HOST", "host"),
    Col("DIRECTORY", "directory"),
    Col("QUEUE", "queue_length", justify="right"),
    Col("REV", "last_revision", justify="right"),
    Col("SITE", "current_site"),
    Col("SEEN", "seconds_since_seen", lambda v: _ago(v)),
    Col("VERSION", "version"),
    Col("ERROR", "last_error", lambda v: "" if v is None else str(v)[:60]),
]


def _ago(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


@agents_app.command("list")
def list_agents(
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
    repo: Annotated[str | None, typer.Option("--repo", "-r", help="Only this repository.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every agent that reported to the site (site admin): last seen, queue, errors."""
    with connect(site, token) as client:
        rows = client.list_agents(repo=repo)
    emit_rows(rows, AGENT_COLUMNS, as_json=as_json)


@agents_app.command("forget")
def forget_agent(
    agent_id: Annotated[str, typer.Argument(help="Agent id (see 'tain agents --json').")],
    site: SiteOpt = DEFAULT_SITE,
    token: TokenOpt = None,
) -> None:
    """Remove an agent that will not come back (site admin)."""
    with connect(site, token) as client:
        client.forget_agent(agent_id)
    say(f"forgot agent {agent_id}")

