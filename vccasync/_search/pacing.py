"""Pacing a search (pure, no I/O): the work left, and how many chains a window's rest needs.

A window's pages are chained by continuation tokens: ``n`` pages take ``n`` latencies
however large the request budget. The budget sends everything left in ``work / rate``
seconds, so a window whose chain would take longer than that sets the pace; it is worth
splitting into sub-windows whose chains end with the run, but not much shorter than two pages:
every window ends with a part-filled page, so each sub-window costs about half a request.
The work left is learnt from every window's pages as they arrive: the day's shape
(:mod:`vccasync.profile`) scaled by how busy each window has been.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from .._windows import Window
from .profile import DayProfile

__all__ = ["MIN_CHAIN", "Pace", "chain_parts", "paying_parts"]

MIN_CHAIN = 1.5  # expected pages of a sub-window at least
LAST_PAGE = 0.5  # a chain's last page, part-filled: half a page's items, a whole page's time
SCATTER = 0.15  # how far a chain's expected time may be off (the day's shape, not the week's)


def chain_parts(
    *,
    pages_left: float,
    work_left: float,
    per_second: float,
    latency: float,
    most: int,
    stall: bool = False,
) -> int:
    """Sub-windows for a window's ``pages_left`` so that its chain ends with the run (1: keep).

    ``work_left`` is every window's pages left (this one's included), ``per_second`` the
    request budget, ``latency`` one page's: the budget needs ``work_left / per_second``
    seconds, and no chain should take longer. Each part gets at least ``MIN_CHAIN`` expected
    pages (each ends part-filled: shorter chains cost more requests than they save); at
    most ``most`` parts. When the budget would send all the work left within two latencies
    (near the end, or a fast budget), a rest of more than a page goes to parts of a page or
    less: any chain of two pages would end the run, the requests are nearly free. ``stall``:
    the budget stops when ``work_left`` is sent, not only the run (ordered iteration, once
    the buffer ahead is full), so a chain longer than that goes to parts of a page or more,
    however short.
    """
    if per_second <= 0 or latency <= 0 or pages_left <= 1:
        return 1
    run = max(work_left, pages_left) / per_second
    if stall:  # a rest of p pages is floor(p) + 1 requests, the last part-filled
        chain = (math.floor(pages_left) + 1) * latency
        if chain <= run:
            return 1
        wanted = math.ceil(chain / max(run, latency))
        return max(1, min(wanted, most, math.ceil(pages_left)))
    if run < 2 * latency:  # the budget idles within two pages: parts of a page or less
        return max(1, min(most, math.ceil(pages_left)))
    if pages_left < 2 * MIN_CHAIN:  # too short to halve
        return 1
    wanted = math.ceil(pages_left * latency / max(run, MIN_CHAIN * latency))
    return max(1, min(wanted, most, math.floor(pages_left / MIN_CHAIN)))


def _run_bound(
    pages_left: float, parts: int, requests: float, chains: int, per_second: float, latency: float
) -> float:
    """The run's lower bound after cutting the chain into ``parts`` (1: not cut): the budget's
    time, or the longest part's chain, its last page (part-filled: ``LAST_PAGE``) included."""
    budget = (requests + (parts - 1) / 2) / per_second
    cycle = max(latency, (chains + parts - 1) / per_second)  # a page, or the budget's turn
    return max(budget, (pages_left / parts + LAST_PAGE) * cycle)


def paying_parts(
    *,
    pages_left: float,
    parts: int,
    work_left: float,
    chains: int,
    per_second: float,
    page_time: float,
) -> int:
    """Of 2 to ``parts`` sub-windows for a chain's ``pages_left``, as many as shorten the run
    the most (the fewest among equals), or 1 when no cut pays for its requests.

    The run lasts at least as long as the budget takes to send every chain's requests (the
    ``work_left`` pages of ``chains`` windows, this one's included, each ending with a
    part-filled page, half a request more on average, at ``per_second``) and as long as this
    chain takes: a page each ``page_time`` (the measured latency), or, when the budget binds,
    each chain's turn of it (``chains / per_second``: every chain waits for the others), for
    its pages and its last, part-filled one. Each part adds a chain, and half a request. A
    cut pays only if the bound after it is shorter than before by more than the estimate's
    scatter (``SCATTER`` of the chain's time, at least a quarter of a page: the expected pages
    come from the day's shape); else the chain keeps its token and no request is spent beyond
    what the window needs.
    """
    if parts < 2 or per_second <= 0 or page_time <= 0:
        return 1
    chains = max(1, chains)
    requests = work_left + chains / 2

    def bound(k: int) -> float:
        return _run_bound(pages_left, k, requests, chains, per_second, page_time)

    best = min(range(2, parts + 1), key=lambda k: (bound(k), k))
    scatter = max(page_time / 4, SCATTER * (pages_left + LAST_PAGE) * page_time)
    return best if bound(best) < bound(1) - scatter else 1


class Pace:
    """The windows of a search not finished yet: where each chain is, and what it holds.

    The work left is the day's shape (``DayProfile``, learnt from every window's pages)
    times each window's own scale: the items its latest page found over what the other
    windows' shape expects for the span it covered (a busy day, a busy week: the latest
    page, as the load may change within a window), or, before its first page, its parent's
    scale (a split's part) or 1.
    """

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.profile = DayProfile()
        self._at: dict[Window, datetime | None] = {}  # where its chain has covered to (None:
        # resumed from a token, not known yet)
        self._inherited: dict[Window, float] = {}
        self._latest: dict[Window, tuple[datetime, datetime, int]] = {}  # its latest page

    def add(self, window: Window, scale: float | None = None, *, resumed: bool = False) -> None:
        """A window to fetch, maybe with the scale of the window it was split from;
        ``resumed``: its chain goes on from a token, somewhere after its start."""
        self._at.setdefault(window, None if resumed else window.start)
        if scale is not None:
            self._inherited[window] = scale

    def seen(self, window: Window, starts: Sequence[datetime], end: datetime | None) -> None:
        """``window``'s chain found ``starts`` on a page and has covered up to ``end``
        (its latest start, or its end after its last page; None: nothing learnt)."""
        if end is None or window not in self._at:
            return
        began = self._at[window] or (min(starts) if starts else None)
        if began is None or end <= began:
            return
        items = self.profile.add(began, end, starts, source=window)
        self._latest[window] = (began, end, items)
        self._at[window] = end

    def finish(self, window: Window) -> None:
        """``window`` has no pages left (ended or split)."""
        for kept in (self._at, self._inherited, self._latest):
            kept.pop(window, None)
        self.profile.forget(window)

    def _shape(self, window: Window) -> tuple[float, DayProfile]:
        latest = self._latest.get(window)
        relative = self.profile.relative(window, *latest) if latest else None
        return relative or (self._inherited.get(window, 1.0), self.profile)

    def scale(self, window: Window) -> float:
        """How much busier ``window`` is than the day's shape says (1: as busy)."""
        return self._shape(window)[0]

    def pages_left(self, window: Window) -> float:
        """Pages expected in ``window`` after where its chain has covered to."""
        at = self._at.get(window) or window.start
        scale, shape = self._shape(window)
        return scale * shape.expected(at, window.end) / self.page_size

    def work(self, *, until: Window | None = None) -> float:
        """Pages expected in every window not finished (``until``: up to that one, included)."""
        return sum(
            self.pages_left(window)
            for window in self._at
            if until is None or window.start <= until.start
        )

    def chains(self, *, until: Window | None = None) -> int:
        """Windows not finished (``until``: up to that one, included)."""
        return sum(1 for window in self._at if until is None or window.start <= until.start)

    def cuts(self, window: Window, cut: datetime, parts: int) -> list[datetime]:
        """Where to cut ``window``'s rest after ``cut`` into ``parts`` of equal expected
        items (the instants between the parts)."""
        return self.profile.quantiles(cut, window.end, parts)
