"""Which revisions a retention policy keeps (pure).

Revision numbers grow with time, so every policy keeps a suffix of the log: the
result is the oldest kept revision number. The head is always kept.
"""

from __future__ import annotations

from collections.abc import Sequence

DAY = 86400.0


def oldest_kept(
    revisions: Sequence[tuple[int, float]],
    *,
    keep_last: int | None,
    keep_days: float | None,
    now: float,
) -> int:
    """``revisions`` are (number, created_at), ascending. Returns the first kept number.

    With both limits set a revision is kept if either keeps it; with none, all are kept.
    """
    if not revisions:
        return 1
    head = revisions[-1][0]
    if keep_last is None and keep_days is None:
        return revisions[0][0]
    candidates = [head]
    if keep_last is not None:
        candidates.append(max(head - max(keep_last, 1) + 1, revisions[0][0]))
    if keep_days is not None:
        cutoff = now - keep_days * DAY
        young = [n for n, at in revisions if at >= cutoff]
        if young:
            candidates.append(young[0])
    return min(candidates)
