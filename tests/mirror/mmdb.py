"""A tiny MaxMind DB (.mmdb) writer for tests: an IPv4 search tree with 24-bit
records, the data section and the metadata, as the MaxMind DB format spec lays
them out. Enough for GeoIP lookups of a few networks; no pointers, no IPv6."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

_META_MARKER = b"\xab\xcd\xefMaxMind.com"


def encode(value: Any) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, dict):
        body = b"".join(encode(str(k)) + encode(v) for k, v in value.items())
        return _control(7, len(value)) + body
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, tuple):  # ("uint16" | "uint32" | "uint64", n): libmaxminddb
        kind = {"uint16": 5, "uint32": 6, "uint64": 9}[value[0]]  # checks metadata types
        raw = value[1].to_bytes((value[1].bit_length() + 7) // 8, "big")
        return _control(kind, len(raw)) + raw
    if isinstance(value, int):
        return encode(("uint16" if value < 1 << 16 else "uint32", value))
    raise TypeError(type(value))


def _control(kind: int, size: int) -> bytes:
    if size >= 29:
        raise ValueError("only small values")
    if kind <= 7:
        return bytes([(kind << 5) | size])
    return bytes([size, kind - 7])  # extended type


def write_mmdb(path: Path, networks: dict[str, dict[str, Any]]) -> None:
    """Write ``{"10.1.0.0/16": {"country": {"iso_code": "DE"}}, ...}`` to ``path``."""
    data = b""
    nodes: list[list[Any]] = [[None, None]]
    for cidr, record in networks.items():
        net = ipaddress.IPv4Network(cidr)
        offset, data = len(data), data + encode(record)
        node, bits = 0, int(net.network_address)
        for depth in range(net.prefixlen):
            bit = (bits >> (31 - depth)) & 1
            if depth == net.prefixlen - 1:
                nodes[node][bit] = ("data", offset)
            else:
                if nodes[node][bit] is None:
                    nodes.append([None, None])
                    nodes[node][bit] = ("node", len(nodes) - 1)
                node = nodes[node][bit][1]
    count = len(nodes)

    def record(value: Any) -> bytes:
        if value is None:
            number = count
        elif value[0] == "node":
            number = value[1]
        else:
            number = count + 16 + value[1]
        return number.to_bytes(3, "big")

    tree = b"".join(record(left) + record(right) for left, right in nodes)
    meta = encode({
        "node_count": ("uint32", count), "record_size": ("uint16", 24),
        "ip_version": ("uint16", 4), "database_type": "tain-test", "languages": ["en"],
        "binary_format_major_version": ("uint16", 2),
        "binary_format_minor_version": ("uint16", 0),
        "build_epoch": ("uint64", 1_700_000_000), "description": {"en": "test"},
    })
    path.write_bytes(tree + b"\x00" * 16 + data + _META_MARKER + meta)
