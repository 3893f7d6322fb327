"""Managing source jobs on a site: adding them (API or tain.toml), syncing the config
file's jobs into the catalog at start, and the status figures every job shows."""

from __future__ import annotations

import logging
import random
import shutil
from typing import Any

from tain.catalog.sources import SourceRecord
from tain.core.schedule import next_run
from tain.core.sourcespec import SourceSpec, parse_spec
from tain.errors import Conflict, NotFound, UsageError
from tain.service.site import Site
from tain.sources.runner import staging_root

log = logging.getLogger("tain.sources")
CONFIG_ACTOR = "tain.toml"
# A job added through the API may read only these variables of tain serve as its rsync
# password, so an admin token cannot send, say, the database URL to an rsync server.
API_PASSWORD_PREFIX = "TAIN_SOURCE_"  # noqa: S105 (a variable name prefix)


def spec_of(record: SourceRecord) -> SourceSpec:
    return parse_spec(record.spec)


def first_run(site: Site, spec: SourceSpec) -> float | None:
    return next_run(spec.schedule, now=site.clock(), last_start=None, draw=random.random())


def add_job(site: Site, raw: dict[str, Any], *, actor: str) -> SourceRecord:
    """Add a job from the API: hooks are refused (they run shell commands on the site,
    so only the config file may set them); the repository must exist."""
    spec = parse_spec(raw)
    if spec.on_success or spec.on_failure:
        raise UsageError("hooks (on_success, on_failure) can only be set in tain.toml",
                         hint="add the job under [[sources.jobs]] in the site's config")
    if spec.password_env and not spec.password_env.startswith(API_PASSWORD_PREFIX):
        raise UsageError(f"password_env must name a variable starting with "
                         f"{API_PASSWORD_PREFIX} (other variables only in tain.toml)")
    site.catalog.get_repo(spec.repo)
    return site.catalog.add_source(spec.name, spec.repo, spec.to_json(), from_config=False,
                                   next_run=first_run(site, spec), actor=actor)


def remove_job(site: Site, name: str, *, actor: str) -> None:
    """Remove a job, its runs and its staging area (not while it runs)."""
    record = site.catalog.get_source(name)
    if record.from_config:
        raise Conflict(f"source {name!r} is defined in tain.toml",
                       hint="remove it from [[sources.jobs]] and restart tain serve")
    if record.state == "syncing":
        raise Conflict(f"source {name!r} is running",
                       hint="pause it, wait for the run to end, then remove it")
    site.catalog.remove_source(name, actor=actor)
    shutil.rmtree(staging_root(site, name), ignore_errors=True)


def sync_config_jobs(site: Site) -> None:
    """Make the catalog's config jobs those of tain.toml: add new ones, store changed
    specs (rescheduling them), remove those no longer in the file. A name already
    used by an API-added job is reported and left alone."""
    wanted = {spec.name: spec for spec in site.config.sources.jobs}
    known = {r.name: r for r in site.catalog.list_sources()}
    for name, spec in wanted.items():
        record = known.get(name)
        if record is None:
            try:
                site.catalog.add_source(name, spec.repo, spec.to_json(), from_config=True,
                                        next_run=first_run(site, spec), actor=CONFIG_ACTOR)
            except Conflict:  # another site on this database added it just now
                log.info("source %s was added by another site meanwhile", name)
        elif not record.from_config:
            log.error("source %s in tain.toml: the name is taken by a job added with "
                      "'tain source add'; the config job is ignored", name)
        else:
            site.catalog.replace_source_spec(name, spec.repo, spec.to_json(),
                                             next_run=first_run(site, spec), actor=CONFIG_ACTOR)
    for name, record in known.items():
        if record.from_config and name not in wanted:
            site.catalog.remove_source(name, actor=CONFIG_ACTOR)


def job_status(site: Site, record: SourceRecord) -> dict[str, Any]:
    """A job's row with the repository's size and file count from the catalog."""
    body = record.to_json()
    body["schedule"] = spec_of(record).schedule.describe()
    body["repo_files"] = body["repo_bytes"] = body["repo_head"] = None
    try:
        repo = site.catalog.get_repo(record.repo)
    except NotFound:
        body["state"] = "disabled"  # its repository was deleted: it cannot run
        return body
    body["repo_head"] = repo.head
    if repo.head:
        revision = site.catalog.get_revision(record.repo, repo.head)
        body["repo_files"], body["repo_bytes"] = revision.files, revision.bytes
    return body


def sources_status(site: Site) -> list[dict[str, Any]]:
    return [job_status(site, r) for r in site.catalog.list_sources()]
