"""Retention and garbage collection.

Safe while pushes run: a blob row is deleted only if no entry references it (checked
in the deleting transaction, and enforced by the entries→blobs foreign key), and only
after a grace period, so a blob uploaded for a commit that has not landed yet stays.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from tain.service.site import Site

log = logging.getLogger("tain.gc")


@dataclass
class GcReport:
    dry_run: bool
    repos: dict[str, int] = field(default_factory=dict)
    blobs_deleted: int = 0
    bytes_freed: int = 0
    chunks_pruned: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def collect_garbage(site: Site, *, actor: str, dry_run: bool = False) -> GcReport:
    report = GcReport(dry_run=dry_run)
    if not dry_run:
        for repo in site.catalog.list_repos():
            report.repos[repo.name] = site.catalog.apply_retention(repo.name, actor=actor)
            site.publish(repo.name)
    cutoff = site.clock() - site.config.gc_grace_seconds
    candidates = site.catalog.unreferenced_blobs(created_before=cutoff)
    sizes = dict(candidates)
    if dry_run:
        report.blobs_deleted = len(candidates)
        report.bytes_freed = sum(sizes.values())
        return report
    for sha in site.catalog.forget_blobs(sizes):
        site.store.delete(sha)
        report.blobs_deleted += 1
        report.bytes_freed += sizes[sha]
    report.chunks_pruned = site.store.prune_chunks(cutoff)
    site.catalog.record_event(actor, "gc", "site", **report.to_json())
    log.info("gc: %s", report)
    return report
