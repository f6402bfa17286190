"""Whether a full page splits its window, and into how many parts (no I/O).

The decision weighs what the search measures as the page comes back (:class:`Gauges`)
against the work left as :class:`Pace` learnt it; a split then hands the window's pace on
to its parts.
"""

from __future__ import annotations

import logging
from datetime import datetime

import attrs

from .._models import Interaction
from .._windows import Window, floor_instant, split_at, sub_window_count
from .pacing import Pace, chain_parts, paying_parts

__all__ = ["Gauges", "SplitDecision"]

log = logging.getLogger("vccasync")


@attrs.frozen
class Gauges:
    """What a split weighs, read as a full page comes back."""

    per_minute: float | None  # the request budget's rate now (None: no client-side budget)
    page_time: float  # the measured latency of a request (0: none answered yet)
    cycle: float  # seconds a chain took a page, the budget's wait included
    room: int | None  # ordered: interactions the buffer ahead may still take; None: unordered
    spare: int  # windows that could start fetching now and still find room in the budget

    @property
    def latency(self) -> float:
        """A chain's page: the measured latency, or longer when it waits for the budget."""
        return max(self.page_time, self.cycle) if self.page_time else 0.0


class SplitDecision:
    """Splits dense windows of a search of ``limit``-item pages, at most ``concurrency``
    parts, keeping ``pace`` (the work left) up to date."""

    def __init__(self, pace: Pace, *, limit: int, concurrency: int) -> None:
        self.pace, self.limit, self.concurrency = pace, limit, concurrency

    def parts(self, window: Window, items: list[Interaction], cut: datetime, gauges: Gauges) -> int:
        """How many parts the rest of ``window`` after ``cut`` goes to (< 2: keep paging).

        With a request budget and a latency seen, as many as make the window's chain end
        with the run (``chain_parts``, the work left as ``Pace`` learnt it, a page as long
        as a chain's pages took, the budget's wait included; ordered, before the windows
        after it fill the buffer ahead and the budget stalls), provided a cut shortens the
        run for the requests it adds (``paying_parts``, with the measured page time, the
        budget and every chain's pages left: if none does, the chain keeps its token); else
        as many as ``concurrency`` leaves idle (``sub_window_count``).
        """
        per_minute, latency, pace = gauges.per_minute, gauges.latency, self.pace
        if not (per_minute and latency):  # no budget known: fill what ``concurrency`` leaves idle
            before = sum(1 for i in items if i.start < cut)
            return sub_window_count(
                first=items[0].start,
                cut=cut,
                items=before,
                end=window.end,
                page_size=self.limit,
                spare=gauges.spare,
            )
        # the budget binds: weigh chains against partial pages
        work, stall, chains = pace.work(), False, pace.chains()
        if gauges.room is not None:  # the budget stalls once later windows fill the buffer ahead
            ahead = pace.work(until=window) + gauges.room / self.limit
            work, stall = min(work, ahead), ahead < work
        pages_left = pace.pages_left(window)
        parts = chain_parts(
            pages_left=pages_left,
            work_left=work,
            per_second=per_minute / 60,
            latency=latency,
            most=self.concurrency,
            stall=stall,
        )
        if (
            not stall
            and paying_parts(  # no cut shortens the run: keep the token
                pages_left=pages_left,
                parts=parts,
                work_left=work,
                chains=chains,
                per_second=per_minute / 60,
                page_time=gauges.page_time,
            )
            < 2
        ):
            return 1
        return parts

    def split(self, window: Window, items: list[Interaction], gauges: Gauges) -> tuple[Window, ...]:
        """Sub-windows for the rest of ``window`` after a full page, or () to keep paging.

        The parts (:meth:`parts`) hold about equal expected items (the day's shape,
        ``Pace.cuts``). The cut is the page's last instant (floored to the millisecond),
        never inside a tie that fills the page: a page that is one instant only keeps
        following the token.
        """
        first, cut = items[0].start, floor_instant(items[-1].start)
        if not (first < cut < window.end and window.start < cut):
            return ()
        parts, pace = self.parts(window, items, cut, gauges), self.pace
        if parts < 2:
            return ()
        if log.isEnabledFor(logging.DEBUG):  # the pace's sums only when they are logged
            log.debug(
                "window %s split in %d at %s (%.1f pages left of %.1f, %.0f/min, %.2f s a page)",
                window.key,
                parts,
                cut.isoformat(),
                pace.pages_left(window),
                pace.work(),
                gauges.per_minute or 0,
                gauges.latency,
            )
        scale = pace.scale(window)
        subs = tuple(split_at(window, cut, pace.cuts(window, cut, parts)))
        pace.finish(window)
        for sub in subs:
            pace.add(sub, scale)
        return subs
