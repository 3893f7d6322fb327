"""Starting and stopping the replication threads of a running site.

The head signer and the follower are site-wide work: with several ``tain serve``
processes on one catalog, each runs only while its process holds the work's lease
(``tain.service.lease``), so one process signs and one follows at a time.
"""

from __future__ import annotations

from collections.abc import Callable

from tain.mirror.follower import Follower
from tain.service.heads import HeadSigner
from tain.service.lease import LeaseKeeper
from tain.service.site import Site

SIGNER_LEASE = "head-signer"
FOLLOWER_LEASE = "follower"


def start_replication(site: Site) -> Callable[[], None]:
    """Start the head signer (idle on a mirror) and, on a mirror, the follower;
    returns the function that stops them."""
    ttl = site.config.lease_seconds
    keepers = [LeaseKeeper(site.catalog, SIGNER_LEASE, ttl=ttl)]
    signer = HeadSigner(site, keepers[0])
    follower = None
    if site.config.mirror:
        keepers.append(LeaseKeeper(site.catalog, FOLLOWER_LEASE, ttl=ttl))
        follower = Follower(site, site.config.mirror, keepers[1])
    for keeper in keepers:
        keeper.start()
    signer.start()
    if follower is not None:
        follower.start()

    def stop() -> None:
        if follower is not None:
            follower.stop()
        signer.stop()
        for keeper in keepers:
            keeper.stop()

    return stop
