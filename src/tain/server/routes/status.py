"""``GET /api/v1/status``: one page of site health for an admin (``tain status``).

Repositories with their head, files and bytes; the blob store's size and, per data
dir, whether it is there and how full its disk is; the last scrub and the last backup
as the audit log recorded them; gc's grace time and the schedules with when each job
is next due.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

import tain
from tain.core.audit import AuditRecord
from tain.server.deps import PrincipalDep, SiteDep
from tain.server.routes.sites import network_of, reports
from tain.service.auth import require_admin
from tain.service.backup import dest_dir, last_backup_time
from tain.service.scrub import last_run_time
from tain.service.site import Site
from tain.sources.jobs import sources_status
from tain.store.local import LocalStore

router = APIRouter(prefix="/api/v1", tags=["site"])

SCRUB_FIELDS = ("ok", "complete", "fraction", "blobs_checked", "bytes_read", "repaired",
                "unrepaired", "problems_total", "duration", "rate_limit", "repair_from")
BACKUP_FIELDS = ("name", "path", "scheduled", "catalog", "blobs", "blobs_copied",
                 "bytes_copied", "blobs_included", "duration")


@router.get("/status")
def site_status(request: Request, site: SiteDep, who: PrincipalDep) -> dict[str, Any]:
    require_admin(who)
    return {
        "version": tain.__version__,
        "time": site.clock(),
        "catalog": site.config.database_url.split(":", 1)[0].split("+", 1)[0],
        "repos": _repos(site),
        "store": _store(site),
        "last_scrub": _last_event(site, "scrub", SCRUB_FIELDS),
        "last_backup": _last_event(site, "backup", BACKUP_FIELDS),
        "gc_grace_seconds": site.config.gc_grace_seconds,
        "schedules": _schedules(site),
        "alerts": [a.to_json() for a in site.catalog.list_alerts(open_only=True)],
        "sites": reports(site, network_of(request), who),
        "sources": sources_status(site),
        "mirror": {"mirror_of": site.mirror_of,  # the sync trace: routes/mirror.py
                   "traces": [t.to_json() for t in site.catalog.list_traces()]},
    }


def _repos(site: Site) -> list[dict[str, Any]]:
    rows = []
    for repo in site.catalog.list_repos():
        files = size = 0
        if repo.head:
            revision = site.catalog.get_revision(repo.name, repo.head)
            files, size = revision.files, revision.bytes
        rows.append({"name": repo.name, "head": repo.head, "oldest_kept": repo.oldest_kept,
                     "files": files, "bytes": size, "public": repo.public})
    return rows


def _store(site: Site) -> dict[str, Any]:
    blobs, size = site.catalog.blob_totals()
    body: dict[str, Any] = {"kind": site.config.store.kind, "blobs": blobs, "bytes": size}
    if isinstance(site.store, LocalStore):
        body["copies"] = site.store.copies
        body["data_dirs"] = site.store.disk_usage()
    return body


def _last_event(site: Site, action: str, fields: tuple[str, ...]) -> dict[str, Any] | None:
    entries = site.catalog.audit_entries(action=action, limit=1)
    if not entries:
        return None
    entry: AuditRecord = entries[-1]
    details = {k: entry.details[k] for k in fields if k in entry.details}
    return {"at": entry.at, "actor": entry.actor, **details}


def _schedules(site: Site) -> dict[str, Any]:
    scrub, backup = site.config.scrub, site.config.backup
    scrub_last = last_run_time(site)
    schedules: dict[str, Any] = {
        "scrub": {
            "every_seconds": scrub.every_seconds, "fraction": scrub.fraction,
            "rate_limit_bytes": scrub.rate_limit_bytes, "last_run": scrub_last,
            "next_due": _next(scrub.every_seconds, scrub_last),
        },
    }
    backup_last = None
    if backup.dest:
        backup_last = last_backup_time(str(dest_dir(backup.dest, base=site.config.site_dir)))
    schedules["backup"] = {
        "every_seconds": backup.every_seconds, "dest": backup.dest, "keep": backup.keep,
        "blobs": backup.blobs, "last_run": backup_last,
        "next_due": _next(backup.every_seconds if backup.dest else None, backup_last),
    }
    return schedules


def _next(every: int | None, last: float | None) -> float | None:
    if not every:
        return None
    return (last + every) if last is not None else None
