"""One ``pages()`` call of a search: the scheduler, the buffers, the chains of pages and the
split decision wired together, the windows a page spawns made pending in their place."""

from __future__ import annotations

import asyncio
import functools
import math
from typing import Protocol

import attrs

from .._models import Interaction
from .._query import SearchQuery
from .._tracing import traced_window
from .._windows import Page, ResumePlan, Window
from .buffers import Node, OrderedBuffer, SharedQueue
from .chain import PageChain, PageGetter
from .order_watch import OrderWatch
from .pacing import Pace
from .scheduler import Scheduler
from .split_decision import Gauges, SplitDecision

__all__ = ["PacingBudget", "PageSource", "SearchRun", "running_cap", "windows_wanted"]

START_WINDOWS = 8  # windows fetching at once before a latency is seen, or without a budget


class PageSource(PageGetter, Protocol):
    """What a search takes of the session: pages, and how long a request takes."""

    @property
    def latency(self) -> float:
        """Seconds per answered request (moving average; 0 before the first answer)."""


class PacingBudget(Protocol):
    """What a search reads of the request budget (the session's ``RateLimiter``)."""

    @property
    def current_per_minute(self) -> float | None:
        """The rate in force now; None when there is no client-side budget."""


def windows_wanted(
    per_minute: float | None, latency: float, concurrency: int, *, waited: float = 0.0
) -> int:
    """How many windows should be fetching at once to use the whole request budget: the
    requests it sends in one latency (a quarter more, plus one), at most ``concurrency``.
    Before a latency is seen it is at least ``waited``, the time since the search sent its
    first requests, and ``START_WINDOWS`` fetch at the least; without a budget,
    ``START_WINDOWS``."""
    if per_minute is None:
        return min(concurrency, START_WINDOWS)
    if latency:
        return min(concurrency, math.ceil(per_minute / 60 * latency * 1.25) + 1)
    return min(concurrency, max(START_WINDOWS, math.ceil(per_minute / 60 * waited * 1.25) + 1))


def running_cap(concurrency: int, *, ordered: bool, buffer_items: int, limit: int) -> int:
    """Windows a search may run at once: ``concurrency``; ordered, no more than the buffer
    holds full pages (a running window may hold a page beyond it)."""
    return min(concurrency, max(1, buffer_items // limit)) if ordered else concurrency


class SearchRun:
    """The windows of one ``pages()`` call, at most ``concurrency`` fetching: ordered, each
    window's pages go to its place in the :class:`OrderedBuffer` (and at most as many windows
    run as the buffer holds full pages); unordered, to one :class:`SharedQueue`.
    :meth:`next_page` hands the consumer the next page."""

    def __init__(
        self,
        source: PageSource,
        query: SearchQuery,
        plan: list[tuple[Window, str | None]],
        resumed: ResumePlan,
        *,
        concurrency: int,
        ordered: bool,
        queue_pages: int,
        buffer_items: int,
        budget: PacingBudget | None,
    ) -> None:
        self.source, self.budget = source, budget
        self.loop = asyncio.get_running_loop()
        self.began = self.loop.time()  # before an answer, the latency is at least since then
        self.widening: asyncio.TimerHandle | None = None
        self.ordered = ordered
        self.concurrency = running_cap(
            concurrency, ordered=ordered, buffer_items=buffer_items, limit=query.limit
        )
        self.pace = Pace(query.limit)
        self.watch = OrderWatch(resumed.repairs, broken=resumed.order_broken)
        self.scheduler = Scheduler[Node](self.run, wanted=self.want, first=self._head)
        self.buffer = OrderedBuffer(queue_pages, buffer_items, on_head=self.scheduler.fill)
        self.shared = SharedQueue(queue_pages)
        self.splitter = SplitDecision(self.pace, limit=query.limit, concurrency=self.concurrency)
        self.chain = PageChain(source, query, self.watch, self.pace, self.split)
        self.remaining = len(plan)  # unordered: windows not ended yet
        node: Node | None = None
        for window, token in plan:
            node = self.buffer.insert(node) if ordered else None
            self.push(window, token, node)
        self.widen()

    def widen(self) -> None:
        """Start the windows wanted now; before any answer, again at each turn of the budget
        while windows are pending (the first requests unanswered, the latency is at least
        that long and more windows are wanted)."""
        self.widening = None
        if self.scheduler.failure.done():
            return
        self.scheduler.fill()
        per_minute = self.per_minute()
        if not per_minute or self.source.latency or not self.scheduler.pending:
            return  # no budget, an answer seen or nothing to start: events fill from now on
        if self.want() < self.concurrency:
            self.widening = self.loop.call_later(60 / per_minute / 1.25, self.widen)

    def _head(self) -> Node | None:
        return self.buffer.head

    def push(self, window: Window, token: str | None, node: Node | None) -> None:
        """Make ``window`` pending (its pace known from now on)."""
        self.scheduler.push(window, token, node)
        self.pace.add(window, resumed=token is not None)

    def per_minute(self) -> float | None:
        """The request budget's rate in force now (None: no client-side budget)."""
        return None if self.budget is None else self.budget.current_per_minute

    def want(self) -> int:
        """Windows that should be fetching at once now (``windows_wanted``)."""
        waited = self.loop.time() - self.began
        return windows_wanted(
            self.per_minute(), self.source.latency, self.concurrency, waited=waited
        )

    def split(self, window: Window, items: list[Interaction]) -> tuple[Window, ...]:
        """Sub-windows for the rest of ``window`` after a full page, or () to keep paging."""
        gauges = Gauges(
            per_minute=self.per_minute(),
            page_time=self.source.latency,
            cycle=self.chain.cycle,
            room=self.buffer.room() if self.ordered else None,
            spare=self.scheduler.spare(),
        )
        return self.splitter.split(window, items, gauges)

    @traced_window
    async def run(self, window: Window, token: str | None, node: Node | None) -> None:
        """Fetch ``window``'s chain from ``token`` and hand its pages on."""
        hold = functools.partial(self.scheduler.holding, window)  # while a queue is full
        try:
            async for page in self.chain.pages(window, token):
                if node is not None:  # sub-windows have queues of their own, after this one
                    self.spawn(page, node)
                    await self.buffer.put(node, page, hold)
                else:  # one queue: the page goes in before any page of what it spawned
                    await self.shared.put(page, hold)
                    self.spawn(page, None)
        except Exception as exc:
            self.scheduler.fail(exc)
        finally:
            self.pace.finish(window)

    def spawn(self, page: Page, node: Node | None) -> None:
        """Make the windows ``page`` spawned pending (in their place after ``node``), start them."""
        self._place(page.spawned, node)

    def _place(self, windows: tuple[Window, ...], after: Node | None) -> None:
        for window in windows:
            after = self.buffer.insert(after) if after else None
            self.push(window, None, after)
        self.scheduler.fill()

    def delivered(self, page: Page) -> Page:
        """``page`` as the consumer gets it: with the repair windows it spawns, which start
        now (ordered mode: in their place after its window)."""
        repairs = self.watch.delivered(page)
        if not repairs:
            return page
        self._place(repairs, self.buffer.head)
        return attrs.evolve(page, spawned=page.spawned + repairs)

    async def verify(self) -> None:
        """Check the order where a resumed split relied on it (``PageChain.verify``)."""
        await self.chain.verify()

    async def next_page(self) -> Page | None:
        """The consumer's next page (None: every window ended), or the first failure."""
        failure = self.scheduler.failure
        if self.ordered:
            if self.buffer.head is None:
                return None
            page = self.delivered(await self.buffer.get(failure))
            self.buffer.taken(page)
            return page
        if not self.remaining:
            return None
        page = self.delivered(await self.shared.get(failure))
        self.remaining += len(page.spawned) - page.last
        return page

    async def close(self) -> None:
        """Cancel what still runs (the consumer stopped or a window failed)."""
        self.buffer.close()  # nothing more starts for the consumer
        if self.widening is not None:
            self.widening.cancel()
        await self.scheduler.close()
