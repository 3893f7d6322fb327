"""``tain scrub SITE_DIR``: read the site's blobs, check every SHA-256, repair what is
wrong. It runs on the site's machine (like ``tain serve``), beside a running server."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tain.cli.common import JsonOpt
from tain.cli.output import Col, emit_json, emit_table, human_size, progress_sink, say, warn
from tain.config import load, parse_size
from tain.errors import IntegrityError

if TYPE_CHECKING:  # the site's engines load only when a scrub runs: 'tain --help' stays fast
    from tain.service.scrub import ScrubReport

PROBLEM_COLUMNS = (
    Col("blob", "sha256", lambda v: str(v)[:16]),
    Col("found", "found"),
    Col("outcome", "outcome"),
)


def register(app: typer.Typer) -> None:
    app.command("scrub")(scrub_command)


def scrub_command(
    site_dir: Annotated[Path, typer.Argument(help="The site directory (from 'tain init').")],
    fraction: Annotated[
        float | None,
        typer.Option("--fraction", min=0.000001, max=1.0,
                     help="Share of the blobs to read, rotating over runs "
                          "(default: [scrub] fraction, 1.0)."),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option("--rate-limit", help="Read at most this many bytes per second, "
                                          "e.g. 100M (default: [scrub] rate_limit).")
    ] = None,
    repair_from: Annotated[
        str | None,
        typer.Option("--repair-from", help="URL of another site (upstream or mirror) "
                                           "to fetch blobs with no good local copy from."),
    ] = None,
    repair_token: Annotated[
        str | None,
        typer.Option("--repair-token", envvar="TAIN_REPAIR_TOKEN", show_envvar=True,
                     help="Token for --repair-from (not needed for public repositories)."),
    ] = None,
    no_repair: Annotated[bool, typer.Option("--no-repair", help="Only check and report.")] = (
        False
    ),
    workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                         help="Blobs checked at once.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Read every stored blob (or a rotating fraction), check its SHA-256, and repair bad
    or missing copies from a good copy or another site (on a mirror: its upstream, unless
    --repair-from names another). Exits 6 if problems remain."""
    config = load(site_dir, os.environ)
    from tain.mirror.remote import SiteSource, upstream_source
    from tain.service.scrub import ScrubOptions, scrub
    from tain.service.site import open_site

    site = open_site(config)
    remote = None
    if not no_repair:  # a mirror repairs from its upstream unless told another site
        remote = SiteSource(repair_from, repair_token) if repair_from else upstream_source(site)

    options = ScrubOptions(
        fraction=fraction if fraction is not None else config.scrub.fraction,
        rate_limit=parse_size(rate_limit) if rate_limit else config.scrub.rate_limit_bytes,
        repair=not no_repair, remote=remote, workers=workers, actor="tain-scrub",
    )
    try:
        with progress_sink() as sink, _quiet_logs():
            report = scrub(site, options, progress=sink)
    finally:
        site.close()
        if remote is not None:
            remote.close()
    if as_json:
        emit_json(report.to_json())
    else:
        show(report, config.site_dir)
    if not report.ok:
        raise IntegrityError(
            f"{report.unrepaired} blob(s) still have problems",
            hint="give another site with --repair-from URL" if remote is None else None,
        )


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """The report says what the per-blob log lines would (they are for server logs)."""
    logger = logging.getLogger("tain")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def show(report: ScrubReport, site_dir: Path) -> None:
    rate = report.bytes_read / report.duration if report.duration > 0 else 0
    scope = "every blob" if report.fraction >= 1 else (
        f"fraction {report.fraction:g}, names {report.slice_start[:8]}.. to "
        f"{report.slice_end[:8]}..")
    say(f"scrubbed {report.blobs_checked} blobs ({scope}): {human_size(report.bytes_read)} "
        f"read in {report.duration:.1f} s ({human_size(rate)}/s)")
    if not report.complete:
        warn("the run was interrupted; the next one goes on from where it stopped")
    if not report.problems_total:
        say("no problems")
        return
    say(f"{report.problems_total} blob(s) had problems: {report.repaired} repaired, "
        f"{report.unrepaired} not")
    rows = [{"sha256": p.sha256, "found": _found(p.copies, site_dir), "outcome": p.outcome}
            for p in report.problems]
    emit_table(rows, PROBLEM_COLUMNS)
    if len(rows) < report.problems_total:
        say(f"(the first {len(rows)} are listed)")
    if report.relinked:
        say(f"{report.relinked} published file(s) re-pointed at a good copy")


def _found(copies: list[dict[str, object]], site_dir: Path) -> str:
    """``corrupt in disk1, missing in disk0``: each bad copy by its data dir."""
    parts = []
    for copy in copies:
        where = str(copy.get("location", "")).split("/blobs/")[0]
        with suppress(ValueError):
            where = str(Path(where).relative_to(site_dir))
        parts.append(f"{copy.get('state')} in {where}")
    return ", ".join(parts) or "no copy"
