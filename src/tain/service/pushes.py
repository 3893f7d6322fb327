"""The push protocol's site side: what is missing, staging chunks, committing."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from tain.catalog.models import CommitResult
from tain.core.manifest import Change, Kind, check_changes
from tain.errors import MissingData, PayloadTooLarge
from tain.service.filecalls import FILE_CALLS
from tain.service.ingest import (
    assemble_blobs,
    missing_chunks,
    parse_chunk_frames,
    parse_frames,
    stage_chunks,
    store_small_blobs,
)
from tain.service.site import Site


def find_missing(
    site: Site, blobs: Iterable[str], chunks: Iterable[str]
) -> tuple[list[str], list[str]]:
    wanted = set(blobs)
    missing_blobs = sorted(wanted - site.catalog.known_blobs(wanted))
    return missing_blobs, missing_chunks(site.catalog, site.store, chunks)


def receive_chunks(site: Site, body: bytes) -> tuple[int, int]:
    limits = site.config.limits
    frames = parse_chunk_frames(
        body, max_chunk=limits.max_chunk_bytes, max_total=limits.max_upload_request_bytes
    )
    return stage_chunks(site.store, frames)


def receive_blobs(site: Site, body: bytes) -> tuple[int, int]:
    """Store whole small files (each at most one chunk's size) as blobs right away."""
    limits = site.config.limits
    frames = parse_frames(body, max_item=limits.max_chunk_bytes,
                          max_total=limits.max_upload_request_bytes, what="blob")
    return store_small_blobs(site.catalog, site.store, frames)


def commit(
    site: Site,
    repo: str,
    changes: Sequence[Change],
    *,
    author: str,
    message: str,
    commit_id: str | None = None,
    base_rev: int | None = None,
) -> CommitResult:
    """Rebuild the blobs the site lacks, then commit one revision and publish it.
    A new revision's latency (this whole call) and size are counted in ``site.usage``."""
    started = time.perf_counter()
    if len(changes) > site.config.limits.max_commit_changes:
        raise PayloadTooLarge(
            f"{len(changes)} changes in one commit; the limit is "
            f"{site.config.limits.max_commit_changes}",
            hint="split the push into several commits",
        )
    changes = check_changes(changes)
    site.catalog.get_repo(repo)  # NotFound before any work
    _materialise_blobs(site, changes)  # large files' blobs: no lock held across them
    with FILE_CALLS:  # the per-file work of one push at a time (see filecalls)
        result = site.catalog.commit(
            repo, changes, author=author, message=message, commit_id=commit_id,
            base_rev=base_rev, sign=site.sign,
        )
        if result.created:
            site.publish(repo, result)
    if result.created:
        r = result.revision
        site.usage.committed(repo, r.added + r.modified + r.deleted,
                             time.perf_counter() - started)
    return result


def _materialise_blobs(site: Site, changes: Sequence[Change]) -> None:
    files = {
        c.entry.sha256: c for c in changes
        if c.entry is not None and c.entry.kind is Kind.FILE and c.entry.sha256
    }
    lacking = [files[s] for s in sorted(set(files) - site.catalog.known_blobs(files))]
    if not lacking:
        return
    no_chunks = [c.path for c in lacking if not c.chunks and c.entry and c.entry.size > 0]
    if no_chunks:
        raise MissingData(
            f"the site lacks the content of {len(no_chunks)} file(s) and no chunks were given",
            hint="send the chunk list with each new file", paths=no_chunks[:100],
        )
    need = missing_chunks(site.catalog, site.store, (d for c in lacking for d, _ in c.chunks))
    if need:
        raise MissingData(
            f"{len(need)} chunk(s) must be uploaded before this commit",
            hint="upload them and commit again", chunks=need,
        )
    assemble_blobs(site.catalog, site.store, [
        (c.entry.sha256, c.entry.size, c.chunks) for c in lacking if c.entry and c.entry.sha256
    ])
