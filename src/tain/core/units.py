"""Sizes for people to read."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(size: int | float) -> str:
    """``1023 B``, ``1.5 KiB``, ``15.3 MiB``: binary units, one decimal."""
    if size < 1024:
        return f"{int(size)} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"
