"""HTTP byte ranges and validators (RFC 9110 sections 8.8, 13 and 14), as pure functions.

The rules that matter here: a Range header that is not understood (other unit, bad
syntax, too many ranges) is ignored and the whole representation is sent; a Range
header that is understood but selects nothing is answered with 416.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime

from tain.errors import RangeNotSatisfiable

MAX_RANGES = 100
"""More range-specs than this in one header: ignore the header (a cheap DoS otherwise)."""

_MAX_DIGITS = 19
"""Longer positions are beyond any file size; parsing them is pointless (and slow)."""
_HUGE = 1 << 64

_SPEC = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)")
_ENTITY_TAG = re.compile(r'(W/)?("[^"]*")')

Span = tuple[int, int]
"""An inclusive byte range ``(first, last)``."""


class _Ignore(Exception):
    """The Range header is not valid byte-range syntax: the RFC says serve the whole."""


def parse_range(header: str | None, size: int) -> list[Span] | None:
    """The inclusive spans a ``Range`` header selects from ``size`` bytes.

    None means "send the whole representation" (no header, another unit, invalid
    syntax, more than ``MAX_RANGES`` specs). Raises RangeNotSatisfiable when the header
    is valid but selects no byte, which is always the case for an empty file.
    Overlapping and adjacent spans are merged; the others keep the order requested.
    """
    if header is None:
        return None
    unit, sep, range_set = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]  # RFC 9110 5.6.1: empty list elements are OK
    if not specs or len(specs) > MAX_RANGES:
        return None
    try:
        parsed = [_parse_spec(spec) for spec in specs]
    except _Ignore:
        return None
    spans = [span for first, last in parsed if (span := _resolve(first, last, size))]
    if not spans:
        raise RangeNotSatisfiable(
            f"none of the requested ranges lies within the {size} bytes of the file",
            size=size,
        )
    return coalesce(spans)


def _parse_spec(spec: str) -> tuple[int | None, int | None]:
    """``(first, last)`` of an int-range, or ``(None, suffix_length)`` of a suffix-range."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise _Ignore(spec)
    first, last, suffix = match.groups()
    if suffix is not None:
        return None, _int(suffix)
    first_pos = _int(first)
    last_pos = _int(last) if last else None
    if last_pos is not None and last_pos < first_pos:
        raise _Ignore(spec)
    return first_pos, last_pos


def _int(digits: str) -> int:
    stripped = digits.lstrip("0") or "0"
    return int(stripped) if len(stripped) <= _MAX_DIGITS else _HUGE


def _resolve(first: int | None, last: int | None, size: int) -> Span | None:
    """The span a parsed spec selects in ``size`` bytes, or None when unsatisfiable."""
    if size <= 0:
        return None
    if first is None:  # suffix-range: the last ``last`` bytes
        if not last:
            return None
        return max(size - last, 0), size - 1
    if first >= size:
        return None
    return first, size - 1 if last is None else min(last, size - 1)


def coalesce(spans: list[Span]) -> list[Span]:
    """Merge overlapping or adjacent spans.

    Each merged span takes the place of its earliest member, so spans that were not
    merged keep the order the client asked for (RFC 9110 14.6).
    """
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    merged: list[tuple[int, int, int]] = []  # (first, last, earliest index)
    for i in order:
        first, last = spans[i]
        if merged and first <= merged[-1][1] + 1:
            prev_first, prev_last, prev_index = merged[-1]
            merged[-1] = (prev_first, max(prev_last, last), min(prev_index, i))
        else:
            merged.append((first, last, i))
    merged.sort(key=lambda m: m[2])
    return [(first, last) for first, last, _ in merged]


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match: does ``header`` name ``etag`` (a full ETag value, e.g. ``"abc"``)?

    Uses the weak comparison (``W/"x"`` matches ``"x"``), as RFC 9110 13.1.2 requires;
    ``*`` matches any current representation.
    """
    if header is None:
        return False
    if header.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(opaque == wanted for _, opaque in _entity_tags(header))


def if_range_matches(header: str, etag: str, last_modified: int) -> bool:
    """If-Range: may the Range header be honoured?

    True when ``header`` is an entity tag strongly equal to ``etag``, or an HTTP-date
    equal to ``last_modified`` (whole seconds since the epoch, as sent in Last-Modified).
    Weak tags never match: a range of a weakly equal representation could mix bytes.
    """
    value = header.strip()
    if value.startswith(('"', "W/")):
        tag = _ENTITY_TAG.fullmatch(value)
        return tag is not None and tag.group(1) is None and value == etag
    date = parse_http_date(value)
    return date is not None and date == last_modified


def not_modified_since(header: str | None, last_modified: int) -> bool:
    """If-Modified-Since: true when the representation is not newer than the date given.

    An invalid date is ignored (returns False), as RFC 9110 13.1.3 requires.
    """
    if header is None:
        return False
    date = parse_http_date(header)
    return date is not None and last_modified <= date


def http_date(seconds: int) -> str:
    """An IMF-fixdate such as ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(seconds, usegmt=True)


def parse_http_date(value: str) -> int | None:
    """Seconds since the epoch of an HTTP-date (any of the three RFC 9110 forms), or None."""
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" and asctime dates: UTC by definition
        parsed = parsed.replace(tzinfo=UTC)
    return int((parsed - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())


def mtime_seconds(mtime_ns: int) -> int:
    """Whole seconds of a nanosecond mtime: HTTP dates have one-second resolution."""
    return mtime_ns // 1_000_000_000


def _entity_tags(header: str) -> list[tuple[bool, str]]:
    """``(weak, opaque_tag)`` of each entity-tag in a list; commas may occur in tags."""
    return [(bool(m.group(1)), m.group(2)) for m in _ENTITY_TAG.finditer(header)]


def _opaque(etag: str) -> str:
    return etag.removeprefix("W/")
