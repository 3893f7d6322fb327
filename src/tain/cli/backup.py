"""``tain backup SITE_DIR DEST`` and ``tain restore SRC SITE_DIR``, on the site's machine.
DEST and SRC are directories or ``s3://BUCKET/PREFIX`` (see docs/operations.md)."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from tain.cli.common import JsonOpt
from tain.cli.output import emit_json, human_size, say, warn
from tain.config import load

ENDPOINT_ENV = "TAIN_BACKUP_S3_ENDPOINT_URL"  # tain.service.backup_targets reads the same

S3EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint-url", show_default=False,
        help=f"S3-compatible endpoint for s3:// (default: ${ENDPOINT_ENV}, else AWS); "
             "credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


def backup_command(
    site_dir: Annotated[Path, typer.Argument(help="The site directory.")],
    dest: Annotated[str, typer.Argument(
        help="Backup directory (created if needed) or s3://BUCKET/PREFIX.")],
    no_blobs: Annotated[
        bool, typer.Option("--no-blobs", help="Catalog, config and keys only.")
    ] = False,
    s3_endpoint_url: S3EndpointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a consistent backup of a running site: catalog, config, keys and (new) blobs."""
    from tain.service.backup import backup, open_dest  # engines load only when used
    from tain.service.site import open_site

    site = open_site(load(site_dir, os.environ))
    try:
        with closing(open_dest(site, dest, os.environ, endpoint_url=s3_endpoint_url)) as target:
            report = backup(site, target, blobs=not no_blobs, actor="tain-backup")
    finally:
        site.close()
    if as_json:
        emit_json(report.to_json())
        return
    blobs = (f"{report.blobs} blobs ({report.blobs_copied} new, "
             f"{human_size(report.bytes_copied)} copied)" if report.blobs_included
             else f"no blobs ({report.blobs} named by the catalog)")
    say(f"backup {report.path}: {len(report.repos)} repositories, {report.catalog} catalog, "
        f"{blobs}, in {report.duration:.1f} s")


def restore_command(
    source: Annotated[str, typer.Argument(
        help="A backup, or a destination (its newest backup is used): a directory or "
             "s3://BUCKET/PREFIX[/NAME].")],
    site_dir: Annotated[Path, typer.Argument(help="New, empty site directory.")],
    s3_endpoint_url: S3EndpointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring a site back from a backup: same revisions, same bytes, same keys."""
    from tain.service.backup import locate_backup, restore

    target, name = locate_backup(source, os.environ, endpoint_url=s3_endpoint_url)
    with closing(target):
        report = restore(target, name, site_dir, os.environ, actor="tain-restore")
    if as_json:
        emit_json(report.to_json())
    else:
        say(f"restored {report.source} into {report.site_dir}: {len(report.repos)} "
            f"repositories, {report.blobs_restored} blobs "
            f"({human_size(report.bytes_restored)}), in {report.duration:.1f} s")
        say(f"start it with: tain serve {report.site_dir}")
    if report.blobs_missing:
        warn(f"{report.blobs_missing} blob(s) are not in the backup: fetch them with "
             f"'tain scrub {report.site_dir} --repair-from URL'")
