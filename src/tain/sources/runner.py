"""One run of a pull source job: fetch into the staging tree, ingest, hooks.

The run commits at most one revision, and only at its very end: a failure at any step
(unreachable upstream, rsync exit code not accepted, a checksum mismatch, too many
deletions, an empty upstream, a cancel) leaves the repository's head as it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tain.catalog.sources import RunOutcome
from tain.core.manifest import Kind
from tain.core.sourcepolicy import deletion_problem
from tain.core.sourcespec import SourceSpec
from tain.errors import TainError, UsageError
from tain.service.site import Site
from tain.sources.hooks import run_hook
from tain.sources.http import HttpUpstream
from tain.sources.ingest import ingest_tree
from tain.sources.rsync import run_rsync
from tain.sources.state import JobState

logger = logging.getLogger("tain.sources")


@dataclass
class RunLog:
    """Timestamped lines of one run (stored with the run, shown by tain source show)."""

    clock: Callable[[], float]
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.clock()))
        self.lines.append(f"{stamp} {line}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def staging_root(site: Site, name: str) -> Path:
    return site.config.site_dir / "sources" / name


def run_source(site: Site, spec: SourceSpec, run_id: int, *,
               cancel: threading.Event) -> RunOutcome:
    log = RunLog(site.clock)
    log(f"run {run_id} of source {spec.name}: {spec.kind} {spec.url} -> {spec.repo}")
    try:
        site.check_writable()  # a mirror's repositories come from its upstream only
        site.catalog.get_repo(spec.repo)
        with JobState(staging_root(site, spec.name)) as state:
            moved, files = _fetch(site, spec, state, cancel, log)
            result = ingest_tree(site, spec, state, log=log,
                                 message=f"source {spec.name}: run {run_id} from {spec.url}")
        outcome = RunOutcome("success", moved, files, result.revision)
        log(f"success: {files} files ({moved} bytes) transferred")
    except TainError as err:
        log(f"failed: {err}")
        outcome = RunOutcome("failed", error=str(err))
    except Exception as exc:  # a bug must not kill the scheduler; the log says what
        logger.exception("source %s: run %d failed", spec.name, run_id)
        log(f"failed: unexpected {type(exc).__name__}: {exc}")
        outcome = RunOutcome("failed", error=f"unexpected {type(exc).__name__}: {exc}")
    run_hook(spec, outcome, log)
    return replace(outcome, log=log.text())


def _fetch(site: Site, spec: SourceSpec, state: JobState, cancel: threading.Event,
           log: RunLog) -> tuple[int, int]:
    """Bring the staging tree up to date; returns (bytes, files) transferred."""
    head_files = {e.path for e in site.catalog.iter_tree(spec.repo) if e.kind is Kind.FILE}
    if spec.kind == "rsync":
        allowed = spec.max_delete.allowed(len(head_files)) if head_files else None
        synced = run_rsync(spec, state.tree, max_delete=allowed, cancel=cancel, log=log)
        return synced.bytes, synced.files
    with HttpUpstream(spec, state, cancel=cancel, log=log) as upstream:
        listing = upstream.list_files()
        deleted = len(head_files - listing.files.keys())
        problem = deletion_problem(len(head_files), len(listing.files), deleted,
                                   spec.max_delete)
        if problem:
            raise UsageError(problem, hint="check the upstream; raise max_delete if intended")
        stats = upstream.fetch(listing)
        removed = upstream.prune(listing)
        log(f"downloaded {stats.files} files ({stats.bytes} bytes), removed {removed}")
        return stats.bytes, stats.files
