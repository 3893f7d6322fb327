"""Starting and stopping the replication threads of a running site.

The head signer and the follower are site-wide work: with several ``tain serve``
processes on one catalog, each runs only while its process holds the work's lease
(``tain.service.lease``), so one process signs and one follows at a time.
"""

from __future__ import annotations

from tain.mirror.follower import Follower
from tain.service.heads import HeadSigner
from tain.service.lease import LeaseKeeper
from tain.service.site import Site

SIGNER_LEASE = "head-signer"
FOLLOWER_LEASE = "follower"


class Replication:
    """The head signer (idle on a mirror) and, on a mirror, the follower, each working
    only while its lease is held. ``stop`` ends whatever ``start`` began, also when
    ``start`` failed halfway or never ran."""

    def __init__(self, site: Site) -> None:
        ttl = site.config.lease_seconds
        self.keepers = [LeaseKeeper(site.catalog, SIGNER_LEASE, ttl=ttl)]
        self.signer = HeadSigner(site, self.keepers[0])
        self.follower = None
        if site.config.mirror:
            self.keepers.append(LeaseKeeper(site.catalog, FOLLOWER_LEASE, ttl=ttl))
            self.follower = Follower(site, site.config.mirror, self.keepers[1])

    def start(self) -> None:
        for keeper in self.keepers:
            keeper.start()
        self.signer.start()
        if self.follower is not None:
            self.follower.start()

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        self.signer.stop()
        for keeper in self.keepers:
            keeper.stop()
