"""Starting and stopping the replication threads of a running site."""

from __future__ import annotations

from collections.abc import Callable

from tain.mirror.follower import Follower
from tain.service.heads import HeadSigner
from tain.service.site import Site


def start_replication(site: Site) -> Callable[[], None]:
    """Start the head signer (idle on a mirror) and, on a mirror, the follower;
    returns the function that stops them."""
    signer = HeadSigner(site)
    signer.start()
    follower = Follower(site, site.config.mirror) if site.config.mirror else None
    if follower is not None:
        follower.start()

    def stop() -> None:
        if follower is not None:
            follower.stop()
        signer.stop()

    return stop
