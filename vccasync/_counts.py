"""Counts as the progress and summary lines say them: ``1 request``, ``2 requests``,
``1,204 interactions``, ``1 retry``, ``0 retries``. Pure, no I/O."""

from __future__ import annotations

__all__ = ["count"]

_IRREGULAR = {"retry": "retries", "entry": "entries"}


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` (thousands separated) and ``noun``, plural unless ``n`` is 1; the plural is
    ``plural`` when given, else the noun with ``s`` (``retry`` -> ``retries``)."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {plural or _IRREGULAR.get(noun) or noun + 's'}"
