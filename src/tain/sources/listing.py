"""Reading an HTTP upstream's directory listings and checksum files (pure: text in,
values out).

Three listing formats: nginx's and Apache's autoindex HTML (any page of links, really)
and nginx's ``autoindex_format json``. A link counts only when it resolves to a direct
child of the listed directory: parent links, sort links (``?C=N;O=D``), absolute links
elsewhere and anything with a query or fragment are dropped, so a walk never leaves
the base URL. ``SHA256SUMS`` lines (``<hex>  name`` or ``<hex> *name``) give expected
digests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from tain.core.paths import normalize_path
from tain.errors import InvalidPath, RemoteError

_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


@dataclass(frozen=True, slots=True)
class Listed:
    name: str
    is_dir: bool


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def parse_listing(body: str, content_type: str, page_url: str) -> list[Listed]:
    """The children of the directory at ``page_url`` (which ends with '/')."""
    if "json" in content_type.lower():
        return _parse_json(body)
    parser = _Links()
    parser.feed(body)
    found: dict[str, Listed] = {}
    for href in parser.hrefs:
        child = child_of(page_url, href)
        if child is not None:
            found.setdefault(child.name, child)
    return sorted(found.values(), key=lambda c: c.name)


def child_of(page_url: str, href: str) -> Listed | None:
    """The direct child a link names, or None for any other link."""
    target = urlsplit(urljoin(page_url, href))
    page = urlsplit(page_url)
    if target.query or target.fragment or (target.scheme, target.netloc) != (
        page.scheme, page.netloc
    ):
        return None
    if not target.path.startswith(page.path):
        return None
    rest = target.path[len(page.path):]
    is_dir = rest.endswith("/")
    name = unquote(rest.rstrip("/")) if is_dir else unquote(rest)
    if not name or "/" in name or name in (".", ".."):
        return None
    return Listed(name, is_dir)


def _parse_json(body: str) -> list[Listed]:
    try:
        items = json.loads(body)
    except ValueError as exc:
        raise RemoteError(f"the upstream's JSON listing is not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise RemoteError("the upstream's JSON listing is not a list")
    out = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            continue
        out.append(Listed(name, item.get("type") == "directory"))
    return sorted(out, key=lambda c: c.name)


def parse_sha256sums(text: str, prefix: str = "") -> dict[str, str]:
    """Repository path (``prefix`` + the listed name) → SHA-256; bad lines are skipped."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        m = _SUM_LINE.match(line.strip())
        if not m:
            continue
        name = m.group(2).strip()
        name = name[2:] if name.startswith("./") else name
        try:
            path = normalize_path(prefix + name)
        except InvalidPath:
            continue
        sums[path] = m.group(1).lower()
    return sums
