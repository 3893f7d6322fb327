"""Which region a client is in: the client's address (behind trusted proxies) and a
CIDR → region map, longest prefix first."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tain.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class RegionMap:
    """Networks with their regions, most specific first."""

    networks: tuple[tuple[Network, str], ...] = ()

    @classmethod
    def parse(cls, table: Mapping[str, str]) -> RegionMap:
        """``{"10.1.0.0/16": "eu", ...}``; raises UsageError naming a bad network."""
        pairs = [(parse_network(cidr), region) for cidr, region in table.items()]
        pairs.sort(key=lambda pair: -pair[0].prefixlen)
        return cls(tuple(pairs))

    def region_of(self, address: str) -> str | None:
        ip = parse_address(address)
        if ip is None:
            return None
        for network, region in self.networks:
            if ip.version == network.version and ip in network:
                return region
        return None


def parse_network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise UsageError(f"{text!r} is not a network (CIDR) address: {exc}") from None


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(parse_network(t) for t in texts)


def parse_address(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address: the peer itself, unless the peer is a trusted proxy; then
    the rightmost ``X-Forwarded-For`` hop that is not a trusted proxy (hops a client
    wrote itself, further left, are never believed)."""
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if parse_address(hop) is None:
            return peer  # garbage in the chain: believe only what we saw
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    ip = parse_address(address)
    return ip is not None and any(ip.version == n.version and ip in n for n in trusted)
