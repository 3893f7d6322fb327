"""How the health checker looks at one site: over its HTTP API, or, for the site the
checker runs in, through its own catalog and store.

A probe answers plain questions (is the site there, which repositories, which head,
when was revision N committed, a page of the tree, the SHA-256 of one file's bytes)
and raises tain errors (``RemoteError`` for a site that cannot be reached, ``NotFound``
for a missing repository...). ``sample`` hashes the bytes it received itself: what the
site announces about them is not trusted.
"""

from __future__ import annotations

import hashlib
from typing import Protocol
from urllib.parse import quote

import httpx

import tain
from tain.client import SiteClient, error_from_response
from tain.config_sites import SiteSpec
from tain.core.manifest import Entry
from tain.errors import NotFound, PayloadTooLarge, RemoteError
from tain.service.site import Site

TREE_PAGE = 1000


class SiteProbe(Protocol):
    def version(self) -> str: ...
    def repos(self) -> list[str]: ...
    def head(self, repo: str) -> int: ...
    def committed_at(self, repo: str, number: int) -> float: ...
    def tree_page(self, repo: str, rev: int, after: str) -> tuple[list[Entry], str | None]: ...
    def sample(self, repo: str, path: str, rev: int, max_bytes: int) -> tuple[str, int]: ...
    def close(self) -> None: ...


class CappedHasher:
    """A write-only file that hashes what it gets and refuses more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise PayloadTooLarge(f"the sample is larger than {self.limit} bytes")
        self._digest.update(data)
        return len(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class HttpProbe:
    """A site seen through its API, with the configured token, without retries (a
    health check reports what it saw; the next check is the retry)."""

    def __init__(self, spec: SiteSpec, timeout: float) -> None:
        self._client = SiteClient(spec.url, spec.token, timeout=timeout, retries=0)
        auth = {"Authorization": f"Bearer {spec.token}"} if spec.token else {}
        self._http = httpx.Client(base_url=spec.url, headers=auth, timeout=timeout)

    def version(self) -> str:
        return str(self._client.site().get("version", ""))

    def repos(self) -> list[str]:
        return [str(r["name"]) for r in self._client.list_repos()]

    def head(self, repo: str) -> int:
        return int(self._client.get_repo(repo).get("head") or 0)

    def committed_at(self, repo: str, number: int) -> float:
        return float(self._client.revision(repo, number)["created_at"])

    def tree_page(self, repo: str, rev: int, after: str) -> tuple[list[Entry], str | None]:
        page = self._client.tree_page(repo, rev=rev, after=after or None, limit=TREE_PAGE)
        return page.entries, page.next

    def sample(self, repo: str, path: str, rev: int, max_bytes: int) -> tuple[str, int]:
        """The SHA-256 of the bytes the site sends (whatever digest it announces)."""
        sink = CappedHasher(max_bytes)
        url = f"/{quote(repo, safe='')}/{quote(path, safe='/')}"
        try:
            with self._http.stream("GET", url, params={"rev": rev},
                                   follow_redirects=True) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                for block in response.iter_bytes(1 << 20):
                    sink.write(block)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot fetch {path}: {exc or type(exc).__name__}") from exc
        return sink.hexdigest(), sink.size

    def close(self) -> None:
        self._client.close()
        self._http.close()


class LocalProbe:
    """The site the checker runs in: its catalog and its store (which verifies every
    blob it opens, so rotten bytes show up as an ``IntegrityError``)."""

    def __init__(self, site: Site) -> None:
        self._site = site

    def version(self) -> str:
        return tain.__version__

    def repos(self) -> list[str]:
        return [r.name for r in self._site.catalog.list_repos()]

    def head(self, repo: str) -> int:
        return self._site.catalog.get_repo(repo).head

    def committed_at(self, repo: str, number: int) -> float:
        return self._site.catalog.get_revision(repo, number).created_at

    def tree_page(self, repo: str, rev: int, after: str) -> tuple[list[Entry], str | None]:
        _, entries = self._site.catalog.tree_page(repo, rev, after=after, limit=TREE_PAGE)
        return entries, entries[-1].path if len(entries) == TREE_PAGE else None

    def sample(self, repo: str, path: str, rev: int, max_bytes: int) -> tuple[str, int]:
        entry = self._site.catalog.lookup(repo, path, rev)
        if entry is None or entry.sha256 is None:
            raise NotFound(f"{path} is not in {repo} at revision {rev}")
        sink = CappedHasher(max_bytes)
        with self._site.store.open(entry.sha256) as f:
            while block := f.read(1 << 20):
                sink.write(block)
        return sink.hexdigest(), sink.size

    def close(self) -> None:
        pass


def open_probe(spec: SiteSpec, site: Site, timeout: float) -> SiteProbe:
    return LocalProbe(site) if spec.is_self else HttpProbe(spec, timeout)
