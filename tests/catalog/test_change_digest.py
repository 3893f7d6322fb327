"""The change digest chain: each revision's digest is SHA-256 of the canonical JSON of
its parent's digest and its change list; a commit serialises that list only once."""

from __future__ import annotations

import hashlib
import json

from tain.catalog.commits import _change_digest, chained_digest
from tain.catalog.sql import SqlCatalog
from tain.core.manifest import Change, Entry, Kind, canonical_json


def _spelled_out(parent: str, applied: list[dict[str, object]]) -> str:
    return hashlib.sha256(canonical_json({"parent": parent, "changes": applied})).hexdigest()


def test_the_digest_from_the_stored_body_is_the_documented_one() -> None:
    lists: list[list[dict[str, object]]] = [
        [], [{"op": "delete", "path": "a"}],
        [{"op": "put", "path": "ü/\"q\"", "kind": "file", "mode": 420, "mtime_ns": 1,
          "sha256": "ab" * 32, "size": 3}, {"op": "delete", "path": "z"}],
    ]
    for parent in ("", "cd" * 32):
        for applied in lists:
            assert chained_digest(parent, canonical_json(applied)) == \
                _spelled_out(parent, applied) == _change_digest(parent, applied)


def test_each_revision_chains_to_the_one_before(catalog: SqlCatalog) -> None:
    catalog.create_repo("r", public=True, actor="t")
    for i in range(3):
        entry = Entry(f"d{i}", Kind.DIR, 0o755, i)
        catalog.commit("r", [Change("put", entry.path, entry)], author="t")
    parent = ""
    for logged in catalog.change_log("r", 0):
        assert logged.changes is not None
        assert logged.revision.change_digest == _spelled_out(parent, json.loads(logged.changes))
        parent = logged.revision.change_digest
    assert parent and len(catalog.change_log("r", 0)) == 3
