"""The catalog queries scrub, status and backup use, on SQLite and PostgreSQL: blob rows
paged in name order within name bounds, their totals, and where revisions use a blob."""

from __future__ import annotations

import hashlib

from tain.catalog.sql import SqlCatalog
from tain.core.manifest import Change, Entry, Kind


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def put(catalog: SqlCatalog, path: str, digest: str, size: int = 10) -> None:
    catalog.commit("r", [Change("put", path, Entry(path, Kind.FILE, 0o644, 1, digest, size))],
                   author="t")


def test_blob_pages_follow_name_order_within_bounds(catalog: SqlCatalog) -> None:
    names = sorted(sha(i) for i in range(50))
    catalog.add_blobs([(name, i + 1, []) for i, name in enumerate(names)])
    seen, after = [], ""
    while page := catalog.blob_page(after=after, limit=7):
        seen += page
        after = page[-1][0]
    assert [name for name, _ in seen] == names
    assert dict(seen)[names[3]] == 4
    lower, upper = "4", "a"  # names from 4000... up to, not including, a000...
    inside = [n for n in names if lower <= n[0] < upper]
    assert [n for n, _ in catalog.blob_page(after=lower, below=upper, limit=100)] == inside
    assert catalog.blob_totals() == (50, sum(range(1, 51)))
    count, _ = catalog.blob_totals(after=lower, below=upper)
    assert count == len(inside)


def test_blob_uses_name_the_newest_revision_of_each_version(catalog: SqlCatalog) -> None:
    catalog.create_repo("r", public=False, actor="t")
    a, b = sha(1), sha(2)
    catalog.add_blobs([(a, 10, []), (b, 10, [])])
    put(catalog, "x", a)  # 1: x=a
    put(catalog, "y", a)  # 2: y=a
    put(catalog, "x", b)  # 3: x=b (x=a was live in revisions 1 and 2)
    put(catalog, "z", b)  # 4
    uses = catalog.blob_uses(a)
    assert uses[0] == ("r", "y", 4)  # live at the head first
    assert ("r", "x", 2) in uses and len(uses) == 2
    assert catalog.blob_uses(sha(3)) == []
