"""``python -m bench [--quick]``: run the whole suite and write bench/results/."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from bench import charts, report, runner, setup
from bench.results import load_results
from bench.scale import FULL, QUICK

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="tain against rsync, lsyncd, Syncthing and nginx on the same workloads.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes: a few minutes instead of about 30")
    parser.add_argument("--seed", type=int, default=6, help="workload seed (default 6)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where trees and sites go (default: a new directory in /tmp)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"where results go (default {RESULTS})")
    parser.add_argument("--keep", action="store_true", help="keep the workdir afterwards")
    parser.add_argument("--skip-setup", action="store_true",
                        help="do not install missing tools")
    parser.add_argument("--only", choices=runner.ALL_WORKLOADS, action="append",
                        help="run only these groups: sync (W1-W5), latency (W6), download "
                             "(W7), redirector (W8), mirror (W9), source (W10), targets (T1 "
                             "repeated initial sync, T3 agent memory)")
    parser.add_argument("--agent-files", type=int, default=None, metavar="N",
                        help="T3: files in the agent's tree (default 100,000; quick 20,000)")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only write the .md and .png of an existing results file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.render is not None:
        results = load_results(args.render)
        report.write_markdown(results, args.render.with_suffix(".md"))
        charts.write_chart(results, args.render.with_suffix(".png"))
        return 0
    scale = QUICK if args.quick else FULL
    if args.agent_files is not None:
        scale = dataclasses.replace(scale, agent_files=args.agent_files)
    if not args.skip_setup:
        setup.ensure_tools(lambda m: print(m, file=sys.stderr, flush=True))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"tain-bench-{scale.name}-"))
    options = runner.RunOptions(
        scale=scale, seed=args.seed, workdir=workdir, results_dir=args.results,
        keep=args.keep, workloads=tuple(args.only or runner.ALL_WORKLOADS),
    )
    runner.run(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
