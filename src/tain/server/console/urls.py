"""Where the console lives, and the links its pages make."""

from __future__ import annotations

from urllib.parse import quote

from tain.catalog.models import Repo

PREFIX = "/console"


def download_url(repo: Repo, path: str, rev: int | None = None) -> str:
    """A public repository's files link to the site's own mirror URLs; a private one's
    to the console's download route (a browser sends no token, only the session)."""
    suffix = f"?rev={rev}" if rev else ""
    if repo.public:
        return f"/{repo.name}/{quote(path)}{suffix}"
    query = f"path={quote(path, safe='')}" + (f"&rev={rev}" if rev else "")
    return f"{PREFIX}/repos/{repo.name}/file?{query}"
