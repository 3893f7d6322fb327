"""Directory listings: the autoindex page, its JSON twin and SHA256SUMS, from plain values.

The HTML page links relatively (``name``, ``dir/``, ``../``), like nginx and Apache
mirror indexes, so it must be served at a URL that ends in ``/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from tain.core.manifest import Entry, Kind
from tain.core.paths import name_of
from tain.core.units import human_size
from tain.errors import TainError

SHORT_SHA = 12

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em}"
    "table{border-collapse:collapse}"
    "th,td{padding:.15em 1.2em .15em 0;text-align:left;white-space:nowrap}"
    "td.size{text-align:right}code{color:#555}"
    "footer{margin-top:1.5em;color:#777;font-size:.9em}"
)


def render_index_html(
    repo: str, dir_path: str, rev: int, entries: Sequence[Entry], query_suffix: str = ""
) -> str:
    """An autoindex page of the direct children of ``dir_path`` ("" = repository root).

    ``query_suffix`` (e.g. ``?rev=3``) is appended to every link, so browsing an old
    revision stays in it. Directories come first, then the rest, each by name.
    """
    location = "/" + repo + "/" + (dir_path + "/" if dir_path else "")
    title = escape(f"Index of {location}")
    rows = [_row(entry, query_suffix) for entry in sort_entries(entries)]
    if dir_path:
        rows.insert(0, _link_row("../", "../", query_suffix))
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n<table>\n"
        "<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th><th>SHA-256</th>"
        "</tr></thead>\n<tbody>\n" + "".join(rows) + "</tbody>\n</table>\n"
        f"<footer>tain · revision {rev}</footer>\n</body>\n</html>\n"
    )


def render_index_json(
    repo: str, dir_path: str, rev: int, entries: Sequence[Entry]
) -> dict[str, Any]:
    """The listing as JSON: each entry's manifest form plus its ``name``."""
    return {
        "repo": repo,
        "path": dir_path,
        "revision": rev,
        "entries": [
            {**entry.to_json(), "name": name_of(entry.path)} for entry in sort_entries(entries)
        ],
    }


def render_sha256sums(entries: Iterable[Entry], base: str) -> str:
    """A ``sha256sum -c`` file for the files among ``entries``, relative to ``base``.

    ``entries`` carry repository paths; every one must lie below ``base`` ("" = root).
    Names with a backslash, newline or carriage return use the escaped form of GNU
    coreutils 9: a leading backslash on the line, ``\\\\``, ``\\n``, ``\\r`` in the name.
    """
    lines = []
    for entry in entries:
        if entry.kind is not Kind.FILE or entry.sha256 is None:
            continue
        lines.append((_relative(entry.path, base), entry.sha256))
    return "".join(_sum_line(sha, name) for name, sha in sorted(lines))


def sort_entries(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.kind is not Kind.DIR, name_of(e.path)))


def format_mtime(mtime_ns: int) -> str:
    """``2026-11-24 21:32`` in UTC; ``-`` for a time no calendar can show."""
    try:
        moment = datetime.fromtimestamp(mtime_ns // 1_000_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M")


def _row(entry: Entry, query_suffix: str) -> str:
    name = name_of(entry.path)
    href = quote(name, safe="")
    if entry.kind is Kind.DIR:
        return _link_row(name + "/", href + "/", query_suffix, mtime_ns=entry.mtime_ns)
    if entry.kind is Kind.SYMLINK:
        label = f"{name} → {entry.target}"
        return _link_row(label, href, query_suffix, mtime_ns=entry.mtime_ns)
    size = (
        f'<td class="size" title="{entry.size} bytes">{escape(human_size(entry.size))}</td>'
    )
    sha = entry.sha256 or ""
    digest = f'<code title="{escape(sha)}">{escape(sha[:SHORT_SHA])}</code>'
    return _link_row(name, href, query_suffix, mtime_ns=entry.mtime_ns, size=size, digest=digest)


def _link_row(
    label: str,
    href: str,
    query_suffix: str,
    *,
    mtime_ns: int | None = None,
    size: str = '<td class="size">-</td>',
    digest: str = "",
) -> str:
    when = "" if mtime_ns is None else escape(format_mtime(mtime_ns))
    return (
        f'<tr><td><a href="{escape(href + query_suffix)}">{escape(label)}</a></td>'
        f"{size}<td>{when}</td><td>{digest}</td></tr>\n"
    )


def _relative(path: str, base: str) -> str:
    if not base:
        return path
    if not path.startswith(base + "/"):
        raise TainError(f"{path!r} is not below {base!r}", path=path, base=base)
    return path[len(base) + 1 :]


def _sum_line(sha256: str, name: str) -> str:
    """One line as GNU sha256sum writes it (two spaces: "text mode", same as binary on GNU)."""
    if any(c in name for c in "\\\n\r"):
        escaped = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{sha256}  {escaped}\n"
    return f"{sha256}  {name}\n"
