"""The trace file: ``published/.tain-trace/<repo>``, a few ``key: value`` lines next to
the published tree, so anyone serving or fetching the tree (nginx, rsync) can see how
fresh this mirror is (like Debian's ftpsync trace files)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tain.catalog.mirrorstate import Trace

TRACE_DIR = ".tain-trace"


def trace_text(trace: Trace) -> str:
    def when(t: float | None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else "never"

    return "".join(f"{k}: {v}\n" for k, v in (
        ("repository", trace.repo), ("revision", trace.revision),
        ("upstream", trace.upstream), ("upstream-head", trace.upstream_head),
        ("last-success", when(trace.last_success_at)),
        ("last-attempt", when(trace.last_attempt_at)),
        ("last-bytes", trace.last_bytes), ("last-duration", f"{trace.last_duration:.3f}s"),
        ("last-error", trace.last_error or "none"),
    ))


def write_trace_file(published_dir: Path, trace: Trace) -> Path:
    directory = published_dir / TRACE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / trace.repo
    tmp = directory / f".{trace.repo}.tmp"
    tmp.write_text(trace_text(trace))
    os.replace(tmp, path)
    return path
