"""Repositories deleted upstream, on a mirror that carries "all" of them.

Each full check lists the upstream's repositories; one this mirror holds that the
list no longer names was deleted upstream (or this mirror's token lost the right to
read it). The follower stops syncing it. By default the mirror keeps serving it as it
was, and its trace says "deleted upstream"; with ``[mirror] prune_deleted = true`` it
deletes the repository (audited as ``repo.delete`` by "mirror"), its published tree
and its trace.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace

from tain.catalog.mirrorstate import Trace
from tain.mirror.trace import TRACE_DIR, write_trace_file
from tain.service.site import Site

log = logging.getLogger("tain.mirror")
ACTOR = "mirror"
DELETED = "deleted upstream"


def handle_deleted(site: Site, upstream: str, present: Collection[str], *,
                   prune: bool, now: float) -> list[str]:
    """Mark (or, with ``prune``, delete) the repositories held here that the upstream
    no longer lists; returns their names."""
    traces = {t.repo: t for t in site.catalog.list_traces()}
    gone = [r.name for r in site.catalog.list_repos() if r.name not in present]
    for repo in gone:
        if prune:
            _delete(site, repo)
        else:
            _mark(site, repo, upstream, traces.get(repo), now)
    if prune:  # a sync that raced with the deletion may have left a trace behind
        for repo in set(traces) - set(present) - set(gone):
            site.catalog.drop_trace(repo)
    return gone


def _delete(site: Site, repo: str) -> None:
    site.catalog.delete_repo(repo, actor=ACTOR)
    site.catalog.drop_trace(repo)
    site.reads.forget(repo)
    site.publisher.remove(repo)
    (site.config.published_dir / TRACE_DIR / repo).unlink(missing_ok=True)
    log.warning("%s: deleted upstream; deleted here too ([mirror] prune_deleted)", repo)


def _mark(site: Site, repo: str, upstream: str, old: Trace | None, now: float) -> None:
    if old is not None and old.last_error == DELETED:
        return  # marked before
    head = site.catalog.get_repo(repo).head
    trace = (replace(old, last_attempt_at=now, last_error=DELETED) if old is not None else
             Trace(repo=repo, upstream=upstream, revision=head, upstream_head=head,
                   last_attempt_at=now, last_success_at=None, last_bytes=0,
                   last_duration=0.0, last_error=DELETED))
    site.catalog.record_trace(trace)
    write_trace_file(site.config.published_dir, trace)
    log.warning("%s: deleted upstream; no longer followed, still served", repo)
