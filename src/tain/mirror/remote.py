"""Another site as a source of blobs for repairs: ``tain scrub --repair-from URL``, and
on a mirror its upstream by default, so a blob rotten on a mirror's disks is fetched
again from the site it came from (every byte checked by the scrub before it is stored)."""

from __future__ import annotations

from typing import BinaryIO

from tain.client import SiteClient
from tain.service.site import Site


class SiteSource:
    """A tain site (the upstream or a mirror) that holds the same revisions."""

    def __init__(self, url: str, token: str | None) -> None:
        self.name = url
        self._client = SiteClient(url, token)

    def fetch(self, repo: str, path: str, rev: int, out: BinaryIO) -> None:
        self._client.download_to(repo, path, out, rev=rev)

    def close(self) -> None:
        self._client.close()


def upstream_source(site: Site) -> SiteSource | None:
    """The first upstream of a mirror site (None on a primary)."""
    mirror = site.config.mirror
    if mirror is None or site.mirror_of is None:
        return None
    return SiteSource(site.mirror_of, mirror.token)
