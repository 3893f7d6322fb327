"""``python -m tain.agent``: the agent without the rest of the command line.

The same options as ``tain agent`` (which is the way to run it; this entry point starts
faster and is what benchmarks and minimal installs use)::

    python -m tain.agent [run] DIR --site URL [--site URL2] --repo NAME [options]
    python -m tain.agent [run] --config FILE
    python -m tain.agent status [--state-dir DIR | --config FILE]     (JSON)

Errors are one line on stderr with the exit status of their class (2 usage, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tain.agent.config import config_from_options, default_state_base, load_config
from tain.agent.runner import run_agent
from tain.agent.status import find_state_dirs, read_status
from tain.errors import NotFound, TainError


def _run_parser() -> argparse.ArgumentParser:
    env = os.environ
    p = argparse.ArgumentParser(prog="python -m tain.agent",
                                description="Mirror a directory into a repository as it changes.")
    p.add_argument("directory", nargs="?", type=Path, help="directory to mirror")
    p.add_argument("--site", action="append", default=None,
                   help="site URL; repeat for failover (TAIN_SITE)")
    p.add_argument("--repo", "-r", default=env.get("TAIN_REPO"), help="repository (TAIN_REPO)")
    p.add_argument("--token", default=env.get("TAIN_TOKEN"), help="API token (TAIN_TOKEN)")
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--bwlimit", help="upload limit in bytes/s, e.g. 10M")
    p.add_argument("--parallel", type=int, help="uploads in flight (4)")
    p.add_argument("--ignore", action="append", default=[], help="ignore pattern; repeatable")
    p.add_argument("--no-default-ignores", action="store_true")
    p.add_argument("--heartbeat", help="heartbeat interval (30s)")
    p.add_argument("--rescan", help="full rescan interval (1h)")
    p.add_argument("--max-backoff", help="longest wait for a failed site (30s)")
    p.add_argument("--config", "-c", type=Path, help="TOML file with one or more sources")
    return p


def _status_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tain.agent status",
                                description="The status of local agents, as JSON.")
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--config", "-c", type=Path)
    p.add_argument("--json", action="store_true", help="(the output is always JSON)")
    return p


def run(argv: Sequence[str]) -> int:
    a = _run_parser().parse_args(argv)
    sites = a.site or os.environ.get("TAIN_SITE", "").split()
    config = config_from_options(
        env=os.environ, directory=a.directory, sites=sites, repo=a.repo, token=a.token,
        state_dir=a.state_dir, bwlimit=a.bwlimit, parallel=a.parallel, ignore=a.ignore,
        default_ignores=not a.no_default_ignores, config=a.config,
        durations={"heartbeat": a.heartbeat, "rescan": a.rescan, "max_backoff": a.max_backoff},
    )
    return run_agent(config)


def status(argv: Sequence[str]) -> int:
    a = _status_parser().parse_args(argv)
    if a.config is not None:
        dirs = [s.state_dir for s in load_config(a.config, os.environ, need_tokens=False).sources]
    else:
        base = a.state_dir or default_state_base(os.environ)
        dirs = find_state_dirs(base)
        if not dirs:
            raise NotFound(f"no agent state in {base}", hint="pass --state-dir DIR")
    print(json.dumps([read_status(d) for d in dirs], indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["status"]:
            return status(args[1:])
        return run(args[1:] if args[:1] == ["run"] else args)
    except TainError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
