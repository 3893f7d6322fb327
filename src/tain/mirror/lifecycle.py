"""Starting and stopping the replication threads of a running site."""

from __future__ import annotations

from tain.mirror.follower import Follower
from tain.service.heads import HeadSigner
from tain.service.site import Site


class Replication:
    """The head signer (idle on a mirror) and, on a mirror, the follower. ``stop`` ends
    whatever ``start`` began, also when ``start`` failed halfway or never ran."""

    def __init__(self, site: Site) -> None:
        self.signer = HeadSigner(site)
        self.follower = Follower(site, site.config.mirror) if site.config.mirror else None

    def start(self) -> None:
        self.signer.start()
        if self.follower is not None:
            self.follower.start()

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        self.signer.stop()
