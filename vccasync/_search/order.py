"""Checking, not assuming, that the API pages a window in ascending ``start`` (pure, no I/O).

Splitting a dense window on the fly (the window ends at a cut and sub-windows take over the
rest of its span) and dropping an interaction repeated on a page boundary both rely on that
order. A search checks every page; once a page breaks the order, the search stops splitting,
de-duplicates every window by guid, and *repairs* each window split earlier: a
:class:`Repair` window continues the split window's chain of pages from the token it had
dropped, sent with exactly the query the token came from (an API may bind a token to its
query), keeping only the span the split window still owns (``[start, cut)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from .._models import Interaction
from .._windows import Repair

__all__ = ["Dedup", "Repair", "in_order", "last_start"]


def in_order(items: Sequence[Interaction], previous: datetime | None) -> bool:
    """Whether ``items`` are non-decreasing in ``start``, none before ``previous``.

    ``previous`` is the last ``start`` of the window's previous page (None: no such page).
    """
    last = previous
    for item in items:
        if last is not None and item.start < last:
            return False
        last = item.start
    return True


def last_start(items: Sequence[Interaction], previous: datetime | None) -> datetime | None:
    """The latest ``start`` seen once ``items`` follow a page that ended at ``previous``."""
    starts = [item.start for item in items]
    if previous is not None:
        starts.append(previous)
    return max(starts, default=None)


class Dedup:
    """Drops interactions a window was already given.

    While pages are ordered only an interaction repeated at the same instant can come again
    (a tie cut by a page boundary), so only the guids of the latest instant are kept; after
    :meth:`by_guid` every guid is kept (the order no longer bounds where a repeat can be).
    """

    def __init__(self, seen: Iterable[str] = (), *, by_guid: bool = False) -> None:
        self._instant: datetime | None = None
        self._guids: set[str] = set(seen)
        self._by_guid = by_guid

    def by_guid(self) -> None:
        """Remember every guid from now on (the guids of the latest instant are kept)."""
        self._by_guid = True

    @property
    def guids(self) -> frozenset[str]:
        """The guids remembered now."""
        return frozenset(self._guids)

    def first_time(self, item: Interaction) -> bool:
        """Whether ``item`` is new to the window (and remember it)."""
        if not self._by_guid and item.start != self._instant:
            self._instant, self._guids = item.start, {item.guid}
            return True
        if item.guid in self._guids:
            return False
        self._guids.add(item.guid)
        return True
