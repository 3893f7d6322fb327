"""The "sources" section of ``tain status``."""

from __future__ import annotations

from typing import Any

from tain.cli.output import Col, emit_table, human_size, say, timestamp

COLUMNS = (
    Col("source", "name"),
    Col("repo", "repo"),
    Col("state", "state"),
    Col("last start (UTC)", "last_start", timestamp),
    Col("took", "last_duration", lambda v: f"{v:.1f} s" if isinstance(v, float) else "-",
        justify="right"),
    Col("next run (UTC)", "next_run", timestamp),
    Col("moved", "last_bytes", human_size, justify="right"),
    Col("files", "repo_files", justify="right"),
    Col("size", "repo_bytes", human_size, justify="right"),
)


def show_sources(body: dict[str, Any]) -> None:
    sources = body.get("sources")
    if sources is None:
        return
    if not sources:
        say("sources:     none")
        return
    emit_table(sources, COLUMNS)
    for job in sources:
        if job.get("state") == "failed" and job.get("last_error"):
            say(f"  {job['name']}: {job['last_error']}")
