"""Small helpers shared by the route modules."""

from __future__ import annotations

from tain.catalog.models import Repo, Role
from tain.core.paths import normalize_path
from tain.service.auth import Principal, require_role
from tain.service.site import Site


def repo_for(site: Site, principal: Principal, name: str, role: Role) -> Repo:
    """The repository, once the caller is known to hold ``role`` on it."""
    repo = site.reads.repo(name)
    require_role(site.catalog, principal, repo, role)
    if role is Role.WRITE:
        site.check_writable()
    return repo


def clean_path(raw: str | None) -> str:
    return normalize_path(raw or "", allow_root=True)
