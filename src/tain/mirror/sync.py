"""Bringing one repository up to date with its upstream.

For each page of the upstream's log: verify every revision's signature against the
key of the chain that was current when the revision was made, fetch the blobs the
revisions name that this site lacks (in parallel, each SHA-256 checked before it is
stored), then replay the revisions in one catalog transaction each, which checks the
change digest chain. A ``snapshot`` page (the upstream no longer keeps the revisions
after our head) jumps to the full state of the named revision. Revisions the upstream
no longer keeps are dropped here too (its retention settings are copied). Last, the
upstream's head statement is copied once its signature, its revision and its manifest
digest match what this site now holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tain.catalog.models import Revision
from tain.core.manifest import Entry, Kind, canonical_json, plan_changes
from tain.core.signing import verify_revision
from tain.core.statements import (
    Rotation,
    head_from_json,
    manifest_digest,
    revision_keys,
    verify_bytes,
)
from tain.errors import Conflict, IntegrityError, NotFound
from tain.mirror.upstream import UpstreamClient
from tain.service.site import Site

log = logging.getLogger("tain.mirror")
ACTOR = "mirror"


@dataclass
class SyncResult:
    revision: int
    upstream_head: int
    bytes: int = 0
    revisions: int = 0


class Diverged(Conflict):
    code = "diverged"


def sync_repo(site: Site, client: UpstreamClient, repo: str, keys: Sequence[Rotation],
              *, parallel: int = 4) -> SyncResult:
    """``keys`` is the verified key chain."""
    page = client.log(repo, 0, max_bytes=1)  # settings and head, one small page
    _ensure_repo(site, repo, page["repo"])
    local = site.catalog.get_repo(repo)
    check_not_diverged(site, client, repo, local.head)
    result = SyncResult(local.head, int(page["repo"]["head"]))
    since = local.head
    while True:
        page = client.log(repo, since)
        start = since
        snapshot = page.get("snapshot")
        if snapshot is not None and int(snapshot) > since:
            since = _snapshot(site, client, repo, int(snapshot), keys, parallel, result)
        revisions = [r for r in page["revisions"] if int(r["number"]) > since]
        for raw in revisions:
            _check_signature(raw, keys)
        result.bytes += _fetch_blobs(site, client, _wanted(revisions), parallel)
        for raw in revisions:
            rev = _revision(raw)
            site.catalog.replicate(rev, canonical_json(raw["changes"]).decode(), actor=ACTOR)
            since = rev.number
            result.revisions += 1
        result.upstream_head = int(page["repo"]["head"])
        if not page.get("more") or since == start:  # done, or a page that brings nothing
            break
    result.revision = since
    _follow_retention(site, repo, page["repo"])
    if result.revisions:
        site.publish(repo)
    _copy_head(site, client, repo, since, keys)
    return result


def check_not_diverged(site: Site, client: UpstreamClient, repo: str, head: int) -> None:
    """Refuse to follow an upstream whose revision ``head`` is not ours (an old primary
    rejoining after a promote may hold revisions the new primary never got)."""
    if head == 0:
        return
    mine = site.catalog.get_revision(repo, head)
    try:
        theirs = client.revision(repo, head)
    except NotFound:
        raise Diverged(
            f"{repo}: this site holds revision {head}, which the upstream "
            f"{client.base_url} does not have; following it would fork the history",
            hint="keep this site as it is, or re-create it as a new mirror") from None
    if theirs.get("change_digest") != mine.change_digest:
        raise Diverged(
            f"{repo}: revision {head} here differs from revision {head} on "
            f"{client.base_url}; the histories have forked",
            hint="re-create this site as a new mirror to follow the upstream")


def _ensure_repo(site: Site, repo: str, settings: dict[str, object]) -> None:
    try:
        site.catalog.get_repo(repo)
    except NotFound:
        site.catalog.create_repo(repo, public=bool(settings.get("public")),
                                 description=str(settings.get("description") or ""),
                                 actor=ACTOR)
        keep_last, keep_days = settings.get("keep_last"), settings.get("keep_days")
        site.catalog.update_repo(
            repo, actor=ACTOR, keep_last=int(keep_last) if isinstance(keep_last, int) else None,
            keep_days=float(keep_days) if isinstance(keep_days, int | float) else None)


def _follow_retention(site: Site, repo: str, settings: dict[str, object]) -> None:
    """Drop what the upstream no longer keeps, and take its retention settings."""
    oldest, keep_last, keep_days = (settings.get(k) for k in ("oldest_kept", "keep_last",
                                                                "keep_days"))
    site.catalog.follow_retention(
        repo, oldest_kept=oldest if isinstance(oldest, int) else 1,
        keep_last=keep_last if isinstance(keep_last, int) else None,
        keep_days=float(keep_days) if isinstance(keep_days, int | float) else None,
        actor=ACTOR)


def _check_signature(raw: dict[str, object], chain: Sequence[Rotation]) -> None:
    repo, number, digest = str(raw["repo"]), int(str(raw["number"])), str(raw["change_digest"])
    signature = raw.get("signature")
    if not isinstance(signature, str):
        raise IntegrityError(f"{repo}@{number} is not signed; a mirror takes only "
                             "signed revisions")
    for key in revision_keys(chain, repo, number):
        try:
            verify_revision(key, signature, repo, number, digest)
            return
        except IntegrityError:
            continue
    raise IntegrityError(f"{repo}@{number}: the signature does not verify with the key that "
                         "was current when the revision was made; nothing was committed")


def _wanted(revisions: Iterable[dict[str, object]]) -> set[str]:
    shas: set[str] = set()
    for raw in revisions:
        for change in raw["changes"]:  # type: ignore[attr-defined]
            if change.get("op") == "put" and change.get("kind") == Kind.FILE.value:
                shas.add(str(change["sha256"]))
    return shas


def _fetch_blobs(site: Site, client: UpstreamClient, shas: set[str], parallel: int) -> int:
    missing = sorted(shas - site.catalog.known_blobs(shas))
    if not missing:
        return 0

    def fetch(sha: str) -> int:
        with site.store.new_blob() as writer:
            size = client.fetch_blob(sha, writer)  # type: ignore[arg-type]
            writer.commit(expected_sha256=sha)
        site.catalog.add_blob(sha, size, [])
        return size

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return sum(pool.map(fetch, missing))


def _snapshot(site: Site, client: UpstreamClient, repo: str, number: int,
              keys: Sequence[Rotation], parallel: int, result: SyncResult) -> int:
    raw = client.revision(repo, number)
    _check_signature(raw, keys)
    theirs = {e.path: e for e in client.iter_tree(repo, rev=number)}
    ours = {e.path: e for e in site.catalog.iter_tree(repo)}
    changes = plan_changes(theirs, ours)
    result.bytes += _fetch_blobs(site, client, {
        e.sha256 for e in theirs.values() if e.kind is Kind.FILE and e.sha256}, parallel)
    site.catalog.replicate_snapshot(_revision(raw), changes, actor=ACTOR)
    log.info("%s: started from a snapshot of revision %d", repo, number)
    result.revisions += 1
    return number


def _copy_head(site: Site, client: UpstreamClient, repo: str, head: int,
               chain: Sequence[Rotation]) -> None:
    try:
        raw = client.head(repo)
    except NotFound:
        return  # not signed yet; the next sync copies it
    statement = head_from_json(raw)
    signed = [k.new for k in chain if verify_bytes(k.new, statement.signature,
                                              canonical_json(statement.body()))]
    if not signed or statement.repo != repo:
        raise IntegrityError(f"{repo}: the upstream's head statement has a bad signature")
    if statement.revision != head:
        return  # the upstream moved on meanwhile; the next sync copies a newer one
    local = site.catalog.get_revision(repo, head)
    entries: Iterable[Entry] = site.catalog.iter_tree(repo, head)
    if statement.change_digest != local.change_digest or \
            statement.manifest_digest != manifest_digest(entries):
        raise IntegrityError(f"{repo}@{head}: the signed head statement does not match the "
                             "state this mirror built", hint="the upstream may be forging data")
    site.catalog.put_head(repo, head, statement.to_json())


def _revision(raw: dict[str, object]) -> Revision:
    fields = {k: raw[k] for k in Revision.__dataclass_fields__ if k in raw}
    return Revision(**json.loads(json.dumps(fields)))
