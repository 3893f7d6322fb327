"""Agent settings: frozen values, parsed and validated once, at the edge.

One process mirrors one or more *sources* (a directory into a repository, over an
ordered list of sites). The command line describes one source; a TOML file describes
several::

    state_dir = "/var/lib/tain/agent"   # optional: where each source keeps its state
    heartbeat = "30s"                   # optional agent-wide settings, see Timing
    max_backoff = "30s"
    rescan = "1h"

    [[source]]
    dir = "/srv/www"
    repo = "www"
    sites = ["https://a.example:8080", "https://b.example:8080"]
    token_env = "TAIN_TOKEN_WWW"        # or token = "tain_..."; default $TAIN_TOKEN
    # a site with a token of its own: {url = "https://b...", token_env = "TAIN_TOKEN_B"}
    ignore = ["*.log", "cache/"]        # gitignore syntax, before .tainignore
    bwlimit = "10M"                     # bytes per second
    parallel = 4                        # uploads in flight
    default_ignores = true              # editor temporary files
    state_dir = "/var/lib/tain/www"     # optional: this source's own state directory

The environment is an argument (tests pass their own).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tain.config import parse_duration, parse_size
from tain.core.paths import check_repo_name
from tain.errors import UsageError

DEFAULT_PARALLEL = 4
TOKEN_ENV = "TAIN_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


@dataclass(frozen=True)
class Timing:
    """How often and how patiently the agent does things (seconds)."""

    heartbeat: float = 30.0  # report to the site
    rescan: float = 3600.0  # a full stat walk as a safety net (0: never)
    degraded_rescan: float = 30.0  # a stat walk while inotify cannot watch everything
    verify: float = 60.0  # while idle, check that nobody else moved the repository
    backoff: float = 0.5  # first hold of a failed site
    max_backoff: float = 30.0  # longest hold
    failback: float = 60.0  # probe a preferred site this often while on a later one
    connect_timeout: float = 5.0
    timeout: float = 60.0  # one request


@dataclass(frozen=True)
class SourceConfig:
    directory: Path
    repo: str
    sites: tuple[str, ...]
    token: str | None
    state_dir: Path
    ignore: tuple[str, ...] = ()
    default_ignores: bool = True
    bwlimit: int | None = None  # bytes per second
    parallel: int = DEFAULT_PARALLEL
    site_tokens: tuple[tuple[str, str], ...] = ()  # (site, token) where it differs

    @property
    def label(self) -> str:
        return f"{self.repo}:{self.directory}"

    def token_for(self, site: str) -> str | None:
        return dict(self.site_tokens).get(site, self.token)


@dataclass(frozen=True)
class AgentConfig:
    sources: tuple[SourceConfig, ...]
    timing: Timing = field(default_factory=Timing)


def default_state_base(env: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/tain/agent`` (default ``~/.local/state/tain/agent``)."""
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/state")
    return Path(base) / "tain" / "agent"


def state_dir_for(directory: Path, repo: str, base: Path) -> Path:
    """One state directory per (directory, repository): sites may change, the state stays."""
    key = f"{directory}\0{repo}".encode()
    return base / hashlib.sha256(key).hexdigest()[:16]


def source_config(
    directory: Path,
    *,
    repo: str,
    sites: Sequence[str],
    token: str | None,
    env: Mapping[str, str],
    state_dir: Path | None = None,
    state_base: Path | None = None,
    ignore: Sequence[str] = (),
    default_ignores: bool = True,
    bwlimit: str | int | None = None,
    parallel: int = DEFAULT_PARALLEL,
    site_tokens: Mapping[str, str] | None = None,
) -> SourceConfig:
    """Validate one source's settings."""
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    root = directory.resolve()
    check_repo_name(repo)
    if not sites:
        raise UsageError(f"source {root}: give at least one site", hint="--site URL")
    for site in sites:
        if not site.startswith(("http://", "https://")):
            raise UsageError(f"site URL {site!r} must start with http:// or https://")
    if len(set(sites)) != len(sites):
        raise UsageError(f"source {root}: a site is listed twice")
    if not 1 <= parallel <= 64:
        raise UsageError("parallel must be between 1 and 64")
    limit = parse_size(bwlimit) if isinstance(bwlimit, str) else bwlimit
    if limit is not None and limit <= 0:
        raise UsageError("bwlimit must be positive")
    state = state_dir or state_dir_for(root, repo, state_base or default_state_base(env))
    tokens = tuple(sorted((s.rstrip("/"), t) for s, t in (site_tokens or {}).items()))
    return SourceConfig(
        directory=root, repo=repo, sites=tuple(s.rstrip("/") for s in sites),
        token=token or None, state_dir=state.expanduser().absolute(), ignore=tuple(ignore),
        default_ignores=default_ignores, bwlimit=limit, parallel=parallel,
        site_tokens=tokens,
    )


def load_config(path: Path, env: Mapping[str, str], *, need_tokens: bool = True) -> AgentConfig:
    """Read and check a TOML agent configuration file (``need_tokens`` False: only to
    find the sources' state, as ``tain agent status`` does)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"no agent configuration at {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc
    return parse_config(raw, env, base_dir=path.parent, need_tokens=need_tokens)


def parse_config(
    raw: Mapping[str, Any], env: Mapping[str, str], *, base_dir: Path, need_tokens: bool = True
) -> AgentConfig:
    known = {"state_dir", "source", *Timing.__dataclass_fields__, "parallel"}
    _no_unknown(raw, known, "the agent configuration")
    base = _path(_get(raw, "state_dir", str, None), base_dir) if "state_dir" in raw else None
    parallel = _get(raw, "parallel", int, DEFAULT_PARALLEL)
    tables = raw.get("source")
    if not isinstance(tables, list) or not tables:
        raise UsageError("the agent configuration needs at least one [[source]] table")
    sources = tuple(
        _source(table, env, base_dir=base_dir, state_base=base, parallel=parallel,
                need_token=need_tokens)
        for table in tables
    )
    _no_clashes(sources)
    return AgentConfig(sources, _timing(raw))


def _source(
    table: Any, env: Mapping[str, str], *, base_dir: Path, state_base: Path | None,
    parallel: int, need_token: bool,
) -> SourceConfig:
    if not isinstance(table, dict):
        raise UsageError("each [[source]] must be a table")
    known = {"dir", "repo", "sites", "token", "token_env", "ignore", "bwlimit", "parallel",
             "state_dir", "default_ignores"}
    _no_unknown(table, known, "[[source]]")
    directory = _path(_get(table, "dir", str, None), base_dir)
    repo = _get(table, "repo", str, None)
    token, token_env = _token(table, env, f"source {directory}")
    sites, site_tokens = _sites(table, env, directory)
    missing = [s for s in sites if not site_tokens.get(s, token)]
    if missing and need_token:
        raise UsageError(
            f"source {directory}: no token for {missing[0]}",
            hint=f"set {token_env}, or token/token_env (for the source or the site)",
        )
    bwlimit = table.get("bwlimit")
    if bwlimit is not None and not isinstance(bwlimit, str | int):
        raise UsageError("bwlimit must be a size such as \"10M\"")
    state = _path(_get(table, "state_dir", str, None), base_dir) if "state_dir" in table else None
    return source_config(
        directory, repo=repo, sites=sites, token=token, env=env, state_dir=state,
        state_base=state_base, ignore=_strings(table, "ignore", required=False),
        default_ignores=_get(table, "default_ignores", bool, True), bwlimit=bwlimit,
        parallel=_get(table, "parallel", int, parallel), site_tokens=site_tokens,
    )


def _token(table: Mapping[str, Any], env: Mapping[str, str], where: str) -> tuple[str, str]:
    """(token, the variable it comes from) of a source or site table."""
    if "token" in table and "token_env" in table:
        raise UsageError(f"{where}: give token or token_env, not both")
    token_env = _get(table, "token_env", str, TOKEN_ENV)
    return _get(table, "token", str, "") or env.get(token_env, ""), token_env


def _sites(
    table: Mapping[str, Any], env: Mapping[str, str], directory: Path
) -> tuple[list[str], dict[str, str]]:
    """Site URLs in order, and the tokens of sites that have their own."""
    raw = table.get("sites")
    if not isinstance(raw, list) or not raw:
        raise UsageError(f"source {directory}: 'sites' must list at least one site")
    urls, tokens = [], {}
    for item in raw:
        if isinstance(item, str):
            urls.append(item)
            continue
        if not isinstance(item, dict):
            raise UsageError("each site is a URL or a table {url = ..., token_env = ...}")
        _no_unknown(item, {"url", "token", "token_env"}, "a site")
        url = _get(item, "url", str, None)
        urls.append(url)
        if "token" in item or "token_env" in item:
            token, _ = _token(item, env, f"site {url}")
            if token:
                tokens[url] = token
    return urls, tokens


def _timing(raw: Mapping[str, Any]) -> Timing:
    values: dict[str, float] = {}
    for name in Timing.__dataclass_fields__:
        if name in raw:
            value = raw[name]
            if isinstance(value, str):
                values[name] = _duration(value)
            elif isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                values[name] = float(value)
            else:
                raise UsageError(f"{name} must be a duration such as \"30s\"")
    return Timing(**values)


def timing_from_options(**durations: str | None) -> Timing:
    """Timing from command-line durations ("30s", "2m", "0" for never); None keeps a
    default."""
    return Timing(**{k: _duration(v) for k, v in durations.items() if v})


def _duration(text: str) -> float:
    if text.strip().lower() in ("0", "0s", "never", "off"):
        return 0.0
    return float(parse_duration(text))


def config_from_options(
    *,
    env: Mapping[str, str],
    directory: Path | None = None,
    sites: Sequence[str] = (),
    repo: str | None = None,
    token: str | None = None,
    state_dir: Path | None = None,
    bwlimit: str | None = None,
    parallel: int | None = None,
    ignore: Sequence[str] = (),
    default_ignores: bool = True,
    config: Path | None = None,
    durations: Mapping[str, str | None] | None = None,
) -> AgentConfig:
    """The agent's settings from a command line: one source (DIRECTORY, sites, repo) or
    a configuration file; ``durations`` ("30s") override the timing either way.
    ``sites``, ``repo`` and ``token`` may come from the environment, so with a file
    they are ignored; any other source option with a file is an error."""
    durations = dict(durations or {})
    if config is not None:
        if directory is not None or state_dir or bwlimit or parallel or ignore or (
                not default_ignores):
            raise UsageError("give DIRECTORY --site --repo (and their options) or --config, "
                             "not both", hint="put source settings in the configuration file")
        loaded = load_config(config, env)
        given = timing_from_options(**durations)
        changed = {k: getattr(given, k) for k, v in durations.items() if v}
        return AgentConfig(loaded.sources, replace(loaded.timing, **changed))
    if directory is None or not sites or not repo:
        raise UsageError("give DIRECTORY, --site and --repo (or --config FILE)",
                         hint="tain agent ./www --site http://127.0.0.1:8080 -r www")
    if not token:
        raise UsageError("the agent needs a token with write access to the repository",
                         hint="pass --token or set TAIN_TOKEN")
    source = source_config(
        directory, repo=repo, sites=sites, token=token, env=env, state_dir=state_dir,
        ignore=ignore, default_ignores=default_ignores, bwlimit=bwlimit,
        parallel=parallel or DEFAULT_PARALLEL,
    )
    return AgentConfig((source,), timing_from_options(**durations))


def _no_clashes(sources: Sequence[SourceConfig]) -> None:
    seen: set[tuple[Path, str]] = set()
    states: set[Path] = set()
    for source in sources:
        key = (source.directory, source.repo)
        if key in seen:
            raise UsageError(f"{source.directory} is mirrored into {source.repo} twice")
        if source.state_dir in states:
            raise UsageError(f"two sources share the state directory {source.state_dir}")
        seen.add(key)
        states.add(source.state_dir)


def _no_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(f"unknown setting(s) in {where}: {', '.join(unknown)}")


def _get(table: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    if value is None:
        raise UsageError(f"'{key}' is required")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UsageError(f"'{key}' must be of type {kind.__name__}")
    return value


def _strings(table: Mapping[str, Any], key: str, *, required: bool = True) -> list[str]:
    value = table.get(key, None if required else [])
    if value is None:
        raise UsageError(f"'{key}' is required")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"'{key}' must be a list of strings")
    return list(value)


def _path(value: str, base_dir: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base_dir / path
