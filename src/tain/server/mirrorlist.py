"""The redirector's answers other than the redirect itself: the ranked mirror list of
one file (HTML and JSON) and its Metalink, from plain values."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

import tain
from tain.catalog.models import Version
from tain.core.metalink import MetalinkUrl, location_of, render_metalink
from tain.core.paths import name_of
from tain.core.selection import Ranked
from tain.core.units import human_size


def file_url(base: str, repo: str, path: str) -> str:
    return f"{base}/{quote(repo, safe='')}/{quote(path, safe='/')}"


def mirrorlist_json(repo: str, version: Version, ranked: Sequence[Ranked],
                    client_region: str | None, loads: dict[str, float]) -> dict[str, Any]:
    entry = version.entry
    return {
        "repo": repo, "path": entry.path, "size": entry.size, "sha256": entry.sha256,
        "since_revision": version.rev_from, "client_region": client_region,
        "sites": [
            {"rank": i + 1, "name": r.site.name, "url": file_url(r.site.url, repo, entry.path),
             "region": r.site.region, "tier": str(r.tier), "revision": r.site.revision,
             "in_rotation": r.site.in_rotation, "primary": r.site.primary,
             "capacity": r.site.capacity, "load": round(loads.get(r.site.name, 0.0), 6)}
            for i, r in enumerate(ranked)
        ],
    }


def mirrorlist_html(body: dict[str, Any]) -> str:
    title = escape(f"Mirrors of /{body['repo']}/{body['path']}")
    rows = "".join(
        f"<tr><td>{s['rank']}</td><td>{escape(s['name'])}</td>"
        f"<td>{escape(s['region'] or '-')}</td><td>{escape(s['tier'])}</td>"
        f"<td>{s['revision'] if s['revision'] is not None else '-'}</td>"
        f"<td><a href=\"{escape(s['url'])}\">{escape(s['url'])}</a></td></tr>\n"
        for s in body["sites"]
    )
    region = escape(body["client_region"] or "unknown")
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
        f"<p>Size {human_size(body['size'])}, SHA-256 <code>{escape(body['sha256'] or '')}"
        f"</code>, unchanged since revision {body['since_revision']}. "
        f"Your region: {region}.</p>\n<table>\n<thead><tr><th>#</th><th>Site</th>"
        "<th>Region</th><th>Tier</th><th>Revision</th><th>URL</th></tr></thead>\n"
        f"<tbody>\n{rows}</tbody>\n</table>\n</body>\n</html>\n"
    )


def metalink(repo: str, version: Version, ranked: Sequence[Ranked], now: float) -> str:
    entry = version.entry
    urls = [MetalinkUrl(file_url(r.site.url, repo, entry.path), i + 1,
                        location_of(r.site.region)) for i, r in enumerate(ranked)]
    return render_metalink(name_of(entry.path), entry.size, entry.sha256 or "", urls,
                           published=now, generator=f"tain/{tain.__version__}")
