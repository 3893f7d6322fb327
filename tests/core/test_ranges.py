from __future__ import annotations

import pytest

from tain.core.ranges import (
    MAX_RANGES,
    coalesce,
    etag_matches,
    http_date,
    if_range_matches,
    mtime_seconds,
    not_modified_since,
    parse_http_date,
    parse_range,
)
from tain.errors import RangeNotSatisfiable

ETAG = '"abc123"'
T = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT
T_IMF = "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-499", 1000, [(0, 499)]),
        ("bytes=500-999", 1000, [(500, 999)]),
        ("bytes=0-0", 1000, [(0, 0)]),
        ("bytes=999-999", 1000, [(999, 999)]),
        ("bytes=500-", 1000, [(500, 999)]),  # open range
        ("bytes=0-", 1000, [(0, 999)]),
        ("bytes=-500", 1000, [(500, 999)]),  # suffix range
        ("bytes=-1", 1000, [(999, 999)]),
        ("bytes=-5000", 1000, [(0, 999)]),  # suffix longer than the file: all of it
        ("bytes=900-5000", 1000, [(900, 999)]),  # end clamped to size - 1
        ("bytes=0-99999999999999999999999999", 1000, [(0, 999)]),  # huge end
        ("bytes=0-1,5-6", 1000, [(0, 1), (5, 6)]),
        ("bytes=5-6,0-1", 1000, [(5, 6), (0, 1)]),  # request order kept
        ("bytes=0-10,5-20", 1000, [(0, 20)]),  # overlapping
        ("bytes=0-9,10-19", 1000, [(0, 19)]),  # adjacent
        ("bytes=10-19,0-9,50-60", 1000, [(0, 19), (50, 60)]),
        ("bytes=50-60,10-19,0-9", 1000, [(50, 60), (0, 19)]),
        ("bytes=0-0,0-0,0-0", 1000, [(0, 0)]),
        ("bytes=-100,0-", 1000, [(0, 999)]),
        ("bytes=0-1,2000-3000", 1000, [(0, 1)]),  # unsatisfiable spec dropped
        ("bytes=2000-,-0,3-4", 1000, [(3, 4)]),
        ("bytes = 0-1 , 4-5", 1000, [(0, 1), (4, 5)]),  # optional whitespace
        ("BYTES=0-1", 1000, [(0, 1)]),  # unit is case-insensitive
        ("bytes=0-1,,4-5,", 1000, [(0, 1), (4, 5)]),  # empty list elements
        ("bytes=007-008", 1000, [(7, 8)]),
    ],
)
def test_satisfiable(header: str, size: int, expected: list[tuple[int, int]]) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "items=0-1",  # unknown unit
        "0-1",
        "bytes=abc",
        "bytes=1-a",
        "bytes=--1",
        "bytes=-",
        "bytes=5-1",  # last < first: invalid, not unsatisfiable
        "bytes=0-1,5-1",  # one invalid spec spoils the header
        "bytes=+1-2",
        "bytes=1.5-2",
        "bytes=0x10-0x20",
        "bytes=1-2-3",
        "bytes=- 1",
        "bytes=０-１",  # non-ASCII digits  # noqa: RUF001
        "bytes=1-2;q=1",
    ],
)
def test_ignored(header: str | None) -> None:
    assert parse_range(header, 1000) is None


def test_too_many_ranges_are_ignored() -> None:
    many = ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES + 1))
    assert parse_range("bytes=" + many, 100_000) is None
    at_cap = ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES))
    spans = parse_range("bytes=" + at_cap, 100_000)
    assert spans is not None and len(spans) == MAX_RANGES


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", 1000),
        ("bytes=1000-2000", 1000),
        ("bytes=5000-5001,6000-", 1000),
        ("bytes=-0", 1000),
        ("bytes=99999999999999999999999-", 1000),
        ("bytes=0-", 0),  # any range on an empty file
        ("bytes=0-0", 0),
        ("bytes=-1", 0),
        ("bytes=-0", 0),
    ],
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, size)
    assert info.value.http_status == 416
    assert info.value.details == {"size": size}


def test_invalid_header_on_empty_file_is_ignored_not_416() -> None:
    assert parse_range("bytes=x", 0) is None
    assert parse_range(None, 0) is None


def test_coalesce() -> None:
    assert coalesce([(0, 4), (5, 9)]) == [(0, 9)]
    assert coalesce([(0, 4), (6, 9)]) == [(0, 4), (6, 9)]
    assert coalesce([(6, 9), (0, 4)]) == [(6, 9), (0, 4)]
    assert coalesce([(20, 30), (0, 4), (3, 8), (40, 50)]) == [(20, 30), (0, 8), (40, 50)]
    assert coalesce([(5, 6), (0, 100)]) == [(0, 100)]
    assert coalesce([(1, 1)]) == [(1, 1)]


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("*", True),
        (" * ", True),
        ('"abc123"', True),
        ('W/"abc123"', True),  # weak comparison
        ('"other"', False),
        ('"other", "abc123"', True),
        ('"other","abc123"', True),
        ('"other" ,W/"abc123"', True),
        ('"abc"', False),
        ('"abc123x"', False),
        ('"a,b", "c"', False),  # commas inside a tag do not split it
        ("abc123", False),  # unquoted: not an entity-tag
        ("", False),
    ],
)
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, ETAG) is matches


def test_etag_matches_weak_own_tag() -> None:
    assert etag_matches('"abc123"', 'W/"abc123"')
    assert etag_matches('"a,b"', '"a,b"')


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc123"', True),
        (' "abc123" ', True),
        ('W/"abc123"', False),  # strong comparison: weak tags never match
        ('"other"', False),
        ('"abc123", "other"', False),  # If-Range takes one validator, not a list
        (T_IMF, True),
        ("Sunday, 06-Nov-94 08:49:37 GMT", True),  # obsolete RFC 850 form
        ("Sun Nov  6 08:49:37 1994", True),  # asctime form
        ("Sun, 06 Nov 1994 08:49:38 GMT", False),  # must be equal, not just older
        ("Sun, 06 Nov 1994 08:49:36 GMT", False),
        ("not a date", False),
        ("", False),
    ],
)
def test_if_range(header: str, matches: bool) -> None:
    assert if_range_matches(header, ETAG, T) is matches


def test_if_range_never_matches_a_weak_own_etag() -> None:
    assert not if_range_matches('"abc123"', 'W/"abc123"', T)
    assert not if_range_matches('W/"abc123"', 'W/"abc123"', T)


@pytest.mark.parametrize(
    ("header", "not_modified"),
    [
        (None, False),
        (T_IMF, True),
        ("Sun, 06 Nov 1994 08:49:38 GMT", True),  # later than Last-Modified
        ("Sun, 06 Nov 1994 08:49:36 GMT", False),  # earlier: modified since
        ("Sun, 06 Nov 1994 09:49:37 +0100", True),  # same instant, other offset
        ("yesterday", False),  # invalid: ignored
    ],
)
def test_not_modified_since(header: str | None, not_modified: bool) -> None:
    assert not_modified_since(header, T) is not_modified


def test_http_dates() -> None:
    assert http_date(T) == T_IMF
    assert parse_http_date(T_IMF) == T
    assert parse_http_date(http_date(1_700_000_000)) == 1_700_000_000
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 -0000") == T
    assert parse_http_date("nonsense") is None
    assert parse_http_date("Sun, 99 Nov 1994 08:49:37 GMT") is None


def test_mtime_seconds_floors() -> None:
    assert mtime_seconds(1_999_999_999) == 1
    assert mtime_seconds(2_000_000_000) == 2
    assert mtime_seconds(0) == 0
