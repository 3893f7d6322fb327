"""The audit log's hash chain (pure).

Entry n stores ``hash_n = sha256(canonical(prev_hash, seq, at, actor, action, target,
details))`` with ``prev_hash = hash_{n-1}`` (64 zeros for the first). Editing any
field, removing or reordering entries breaks the chain at that point.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tain.core.manifest import canonical_json

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: float
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def chain_hash(
    prev_hash: str, seq: int, at: float, actor: str, action: str, target: str,
    details: dict[str, Any],
) -> str:
    body = canonical_json(
        {"prev": prev_hash, "seq": seq, "at": repr(at), "actor": actor, "action": action,
         "target": target, "details": details}
    )
    return hashlib.sha256(body).hexdigest()


def verify_chain(records: Iterable[AuditRecord]) -> list[str]:
    """Return one message per break in the chain (empty when intact)."""
    problems: list[str] = []
    prev_hash, expected_seq = GENESIS, 1
    for r in records:
        if r.seq != expected_seq:
            problems.append(f"entry {expected_seq} is missing (next is {r.seq})")
        if r.prev_hash != prev_hash:
            problems.append(f"entry {r.seq}: does not link to the entry before it")
        want = chain_hash(r.prev_hash, r.seq, r.at, r.actor, r.action, r.target, r.details)
        if r.hash != want:
            problems.append(f"entry {r.seq}: content was changed after it was written")
        prev_hash, expected_seq = r.hash, r.seq + 1
    return problems
