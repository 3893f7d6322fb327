"""Metalink 4 (RFC 5854) documents for multi-source downloaders such as aria2c."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

METALINK_TYPE = "application/metalink4+xml"
NAMESPACE = "urn:ietf:params:xml:ns:metalink"


@dataclass(frozen=True, slots=True)
class MetalinkUrl:
    url: str
    priority: int  # 1 is the most preferred (RFC 5854 4.2.16.2)
    location: str | None = None  # ISO 3166-1 alpha-2 country code, when the region is one


def location_of(region: str) -> str | None:
    """A region name usable as a Metalink ``location``: two letters, else none."""
    return region.lower() if len(region) == 2 and region.isalpha() else None


def render_metalink(name: str, size: int, sha256: str, urls: Sequence[MetalinkUrl], *,
                    published: float, generator: str) -> str:
    when = datetime.fromtimestamp(published, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<metalink xmlns="{NAMESPACE}">',
        f"  <generator>{escape(generator)}</generator>",
        f"  <published>{when}</published>",
        f"  <file name={quoteattr(name)}>",
        f"    <size>{size}</size>",
        f'    <hash type="sha-256">{sha256}</hash>',
    ]
    for item in urls:
        where = f" location={quoteattr(item.location)}" if item.location else ""
        lines.append(f'    <url priority="{item.priority}"{where}>{escape(item.url)}</url>')
    lines += ["  </file>", "</metalink>", ""]
    return "\n".join(lines)
