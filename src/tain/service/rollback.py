"""Rollback: a new revision whose content is an older one's. Nothing is rewritten."""

from __future__ import annotations

from tain.catalog.models import CommitResult
from tain.core.manifest import Change
from tain.errors import Conflict
from tain.service.site import Site


def rollback(
    site: Site, repo: str, to_rev: int, *, author: str, path: str | None = None,
    message: str | None = None,
) -> CommitResult:
    """Make the repository (or only ``path`` and what is below it) as at ``to_rev``."""
    site.check_writable()
    catalog = site.catalog
    _, head = catalog.resolve_rev(repo, None)
    catalog.resolve_rev(repo, to_rev)
    prefix = path or ""
    changes = [
        Change("delete", d.path) if d.new is None else Change("put", d.path, d.new)
        for d in catalog.diff(repo, head, to_rev, prefix)
    ]
    if path:
        old, now = catalog.lookup(repo, path, to_rev), catalog.lookup(repo, path, head)
        if old is None and now is not None:
            changes = [Change("delete", path)]
        elif old is not None and (now is None or not old.same_content(now)):
            changes.append(Change("put", path, old))
    if not changes:
        raise Conflict(f"{path or repo} is already as at revision {to_rev}; nothing to roll back")
    what = f"{path} in {repo}" if path else repo
    result = catalog.commit(
        repo, changes, author=author, message=message or f"rollback {what} to revision {to_rev}",
        sign=site.sign,
    )
    site.publish(repo)
    return result
