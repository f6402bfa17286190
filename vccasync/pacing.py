"""Pacing a search (pure, no I/O): the work left, and how many chains a window's rest needs.

A window's pages are chained by continuation tokens: ``n`` pages take ``n`` latencies
however large the request budget. The budget sends everything left in ``work / rate``
seconds, so a window whose chain would take longer than that sets the pace; it is worth
splitting into sub-windows whose chains end with the run, but not much shorter than two pages:
every window ends with a part-filled page, so each sub-window costs about half a request.
Densities are learnt from every window's pages as they arrive; a window not yet seen is
expected at its parent's density, else at the mean of all seen so far.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from .windows import Window

__all__ = ["MIN_CHAIN", "Pace", "chain_parts", "page_density"]

MIN_CHAIN = 1.5  # expected pages of a sub-window at least


def chain_parts(
    *, pages_left: float, work_left: float, per_second: float, latency: float, most: int
) -> int:
    """Sub-windows for a window's ``pages_left`` so that its chain ends with the run (1: keep).

    ``work_left`` is every window's pages left (this one's included), ``per_second`` the
    request budget, ``latency`` one page's: the budget needs ``work_left / per_second``
    seconds, and no chain should take longer. Each part gets at least ``MIN_CHAIN`` expected
    pages (each ends part-filled: shorter chains cost more requests than they save); at
    most ``most`` parts. Near the end, when the budget would send all the work left within
    one latency, a short rest of more than a page goes to parts of a page or less: the
    requests are free then, the chain's latencies are not.
    """
    if per_second <= 0 or latency <= 0 or pages_left <= 1:
        return 1
    run = max(work_left, pages_left) / per_second
    if pages_left < 2 * MIN_CHAIN:  # too short to halve, unless the budget idles
        return min(most, math.ceil(pages_left)) if run <= latency else 1
    wanted = math.ceil(pages_left * latency / max(run, MIN_CHAIN * latency))
    return max(1, min(wanted, most, math.floor(pages_left / MIN_CHAIN)))


def page_density(starts: Sequence[datetime], cut: datetime) -> float:
    """Items per second of a full page's ``starts`` before ``cut`` (0: no span).

    A crowd at one instant (a tie, maybe the rest of one that filled the page before) says
    nothing of the density around it: the largest counts as one item.
    """
    counts = Counter(start for start in starts if start < cut)
    if not counts:
        return 0.0
    seconds = (cut - min(counts)).total_seconds()
    items = sum(counts.values()) - max(counts.values()) + 1
    return items / seconds if seconds > 0 else 0.0


class Pace:
    """The windows of a search not finished yet: where each chain is, and how dense it is."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self._at: dict[Window, datetime] = {}  # the latest start seen, or the window's start
        self._counts: dict[Window, int] = {}  # items seen in the window's own pages
        self._density: dict[Window, float] = {}  # items per second, where known or inherited
        self._items = 0
        self._seconds = 0.0

    def add(self, window: Window, density: float | None = None) -> None:
        """A window to fetch, maybe with the density of the window it was split from."""
        self._at.setdefault(window, window.start)
        if density is not None:
            self._density[window] = density

    def density(self, window: Window) -> float:
        """Items per second expected in ``window``'s rest."""
        known = self._density.get(window)
        if known is not None:
            return known
        return self._items / self._seconds if self._seconds > 0 else 0.0

    def seen(self, window: Window, items: int, last: datetime | None) -> None:
        """``window``'s chain gave ``items`` more, up to the start ``last`` (None: no items)."""
        if window not in self._at or last is None or last <= self._at[window]:
            return
        seconds = (last - self._at[window]).total_seconds()
        self._items += items
        self._seconds += seconds
        self._counts[window] = count = self._counts.get(window, 0) + items
        self._at[window] = last
        self._density[window] = count / (last - window.start).total_seconds()

    def finish(self, window: Window) -> None:
        """``window`` has no pages left (ended or split)."""
        self._at.pop(window, None)
        self._counts.pop(window, None)
        self._density.pop(window, None)

    def pages_left(self, window: Window) -> float:
        """Pages expected in ``window`` after its latest start."""
        at = self._at.get(window, window.start)
        return (window.end - at).total_seconds() * self.density(window) / self.page_size

    def work(self) -> float:
        """Pages expected in every window not finished."""
        return sum(self.pages_left(window) for window in self._at)
