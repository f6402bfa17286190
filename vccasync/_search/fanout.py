"""The fan-out: windows run concurrently, pages stream through bounded queues, in order.

Memory is bounded however long the range: unordered, by one shared queue of ``queue_pages``
pages; ordered, by ``queue_pages`` for the window being read plus ``buffer_items``
interactions fetched ahead for later windows (and a page each for windows waiting to add one).
Dense windows are split on the fly (``Page.spawned``) so that the request budget, not the
latency of one chain of pages, bounds the speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Protocol

import attrs

from .._errors import ResponseValidationError
from .._http.session import Session, smoothed
from .._models import Interaction
from .._page import decode_page
from .._query import SearchQuery
from .._tracing import traced_pages, traced_search, traced_window
from .._windows import (
    Page,
    Repair,
    ResumePlan,
    Window,
    WindowPlan,
    floor_instant,
    split,
    split_at,
    sub_window_count,
)
from .order import Dedup, in_order, last_start
from .pacing import Pace, chain_parts, paying_parts

__all__ = ["InteractionSearch", "Page", "WindowPlan", "windows_wanted"]

MAX_INSTANT = datetime.max.replace(tzinfo=UTC)
BUFFER_ITEMS = 48_000  # ordered: interactions fetched ahead for later windows, at most
START_WINDOWS = 8  # windows fetching at once before a latency is seen, or without a budget
log = logging.getLogger("vccasync")


class _OrderWatch:
    """One search's view of the server's order: checked on every page fetched, repaired once
    broken, the repairs spawned as pages are delivered.

    Until a page fetched breaks the order, every split is remembered (as the :class:`Repair`
    its window would need); the first page that breaks it logs one warning and stops
    splitting. Repairs are spawned in the order pages reach the consumer, never ahead of it:
    the page that broke the order spawns the repairs of the splits delivered before it, a
    split delivered after it spawns its own. So a consumer (a checkpoint) is never handed a
    repair window while the window it repairs is still pending from before its split (a
    split fetched ahead): a search resumed then runs that window again, unsplit, alone.

    A search resumed with splits made before and the order not seen broken may never fetch a
    page out of order again (few windows left): it first checks the page after one split's
    dropped token (:meth:`_Run.verify`); out of order, it breaks the order, and the next page
    delivered spawns the repairs.
    """

    def __init__(self, repairs: Iterable[Repair] = (), *, broken: bool = False) -> None:
        """A watch resumed with the ``repairs`` of a checkpoint: the splits still to re-cover
        should the order break, or (``broken``) the repair windows already running."""
        resumed = list(repairs)
        self.broken = broken  # a page fetched broke the order: no more splitting
        self._announced = broken  # a page delivered did: each later split spawns its repair
        self._breaker: Page | None = None  # the page that broke it, until delivered
        self._announce = False  # the order broke on no page: the next page delivered tells
        self.unverified = [] if broken else resumed[-1:]  # a split of an earlier run, to check
        self._due: list[Repair] = [] if broken else resumed  # of the splits delivered
        self._splits = len(self._due)  # splits so far, delivered or not
        self.repairs: dict[Window, Repair] = {r.window: r for r in resumed} if broken else {}

    def split(self) -> None:
        """Count a split made on the strength of the order (its repair comes with its page:
        see :meth:`delivered`)."""
        self._splits += 1

    def violated(self, window: Window) -> bool:
        """Note a page of ``window`` out of order; whether it is the first (the caller
        names it with :meth:`broke_on`)."""
        if self.broken:
            return False
        self.broken = True
        log.warning(
            "the API did not page window %s in ascending start: no more splitting in this"
            " search, every window de-duplicated by guid, %d split window(s) re-covered",
            window.key,
            self._splits,
        )
        return True

    def broke_on(self, page: Page | None) -> None:
        """``page`` is the first page out of order (None: a page no window delivers, so the
        next page delivered spawns the repairs)."""
        self._breaker, self._announce = page, page is None

    def delivered(self, page: Page) -> tuple[Window, ...]:
        """``page`` reaches the consumer: the repair windows it spawns (none while the order
        holds: a split's repair is kept for the page that will break it)."""
        if page is self._breaker or self._announce:
            self._announced, self._breaker, self._announce = True, None, False
            due, self._due = self._due, []
            due += [page.repair] if page.repair is not None else []
        elif page.repair is None:
            return ()
        elif self._announced:
            due = [page.repair]
        else:
            self._due.append(page.repair)
            return ()
        due.sort(key=lambda r: r.window)
        self.repairs.update((r.window, r) for r in due)
        return tuple(r.window for r in due)


class PacingBudget(Protocol):
    """What a search reads of the request budget (the session's ``RateLimiter``)."""

    @property
    def current_per_minute(self) -> float | None:
        """The rate in force now; None when there is no client-side budget."""


class InteractionSearch:
    """An ``async for`` over interactions; ``pages()`` iterates whole pages instead.

    ``ordered=True`` yields windows in chronological order (later windows are fetched ahead
    into bounded queues); ``ordered=False`` yields pages as they arrive. ``plan`` resumes a
    search: the windows still to run, each from its token; a :class:`ResumePlan` (what
    ``Checkpoint.plan()`` gives) also carries the repairs of windows split earlier.
    ``budget``: the request budget that paces and widens the search (None: none).
    """

    def __init__(
        self,
        session: Session,
        query: SearchQuery,
        *,
        concurrency: int,
        ordered: bool = True,
        plan: WindowPlan | None = None,
        queue_pages: int = 2,
        buffer_items: int = BUFFER_ITEMS,
        budget: PacingBudget | None = None,
    ) -> None:
        self._session = session
        self._budget = budget
        self.query = query
        self.plan: list[tuple[Window, str | None]] = (
            [(w, None) for w in split(query.start, query.end)] if plan is None else list(plan)
        )
        self._concurrency = concurrency
        self._ordered = ordered
        self._queue_pages = queue_pages
        self._buffer_items = buffer_items
        self._resumed = plan if isinstance(plan, ResumePlan) else ResumePlan(())

    @property
    def windows(self) -> list[Window]:
        """The windows this search runs."""
        return [window for window, _ in self.plan]

    async def __aiter__(self) -> AsyncIterator[Interaction]:
        async for page in self.pages():
            for item in page.items:
                yield item

    @traced_search
    async def pages(self) -> AsyncIterator[Page]:
        """Every page of every window (empty and last pages included, for checkpoints).

        A window whose page comes back full while the request budget has room to spare ends
        with that page and hands the rest of its span to sub-windows (``Page.spawned``),
        which run at once; ``ordered=True`` yields them in their chronological place.
        """
        if not self.plan:
            return
        run = _Run(
            self._session,
            self.query,
            self.plan,
            self._resumed,
            budget=self._budget,
            concurrency=self._concurrency,
            ordered=self._ordered,
            queue_pages=self._queue_pages,
            buffer_items=self._buffer_items,
        )
        try:
            await run.verify()
            if self._ordered:
                while run.head is not None:
                    page = run.delivered(await _next_page(run.head.queue, run.failure))
                    run.taken(page)
                    yield page
            else:
                remaining = len(self.plan)
                while remaining:
                    page = run.delivered(await _next_page(run.shared, run.failure))
                    remaining += len(page.spawned) - page.last
                    yield page
        finally:
            await run.close()


def windows_wanted(per_minute: float | None, latency: float, concurrency: int) -> int:
    """How many windows should be fetching at once to use the whole request budget: the
    budget times the latency (a quarter more, plus one), at most ``concurrency``; before a
    latency is seen, or without a budget, at most ``START_WINDOWS``."""
    if per_minute is None or not latency:
        return min(concurrency, START_WINDOWS)
    return min(concurrency, math.ceil(per_minute / 60 * latency * 1.25) + 1)


class _Node:
    """A window's place in the ordered output: its queue, then the next window's node."""

    __slots__ = ("capacity", "items", "next", "pending", "queue")

    def __init__(self, capacity: int, after: _Node | None = None) -> None:
        self.capacity = capacity
        self.queue = asyncio.Queue[Page]()  # bounded by the run (``_Run.may_buffer``)
        self.items = 0  # interactions in ``queue``
        self.pending: _Pending | None = None  # its entry in ``_Run.pending`` until it starts
        self.next: _Node | None = None
        if after is not None:
            self.next, after.next = after.next, self


_Pending = tuple[datetime, int, Window, str | None, _Node | None]


class _Run:
    """The windows of one ``pages()`` call: at most ``concurrency`` run, earliest first; each
    window's chain of pages is fetched, checked and split here (``window_pages``)."""

    def __init__(
        self,
        session: Session,
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
        self.session, self.query, self.budget = session, query, budget
        self.concurrency, self.ordered = concurrency, ordered
        self.queue_pages, self.buffer_items = queue_pages, buffer_items
        self.failure: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self.shared = asyncio.Queue[Page](queue_pages)
        self.pending: list[_Pending] = []  # a heap, earliest start first
        self.tasks: dict[asyncio.Task[None], datetime] = {}  # running windows by start
        self.held: dict[asyncio.Task[None], datetime] = {}  # of those, waiting on a full queue
        self.fetching = 0  # windows running and not held by a full queue
        self.order = itertools.count()
        self.watch = _OrderWatch(resumed.repairs, broken=resumed.order_broken)
        self.pace = Pace(query.limit)
        self.cycle = 0.0  # seconds a chain takes a page: the budget's wait and the latency
        self.buffered = 0  # interactions queued for windows after the head (ordered mode)
        self.changed = asyncio.Event()  # set (and replaced) when the consumer takes a page
        node: _Node | None = None
        self.head: _Node | None = None
        for window, token in plan:
            node = _Node(queue_pages, node) if ordered else None
            self.head = self.head or node
            self.push(window, token, node)
        self.fill()

    def push(self, window: Window, token: str | None, node: _Node | None) -> None:
        entry = (window.start, next(self.order), window, token, node)
        heapq.heappush(self.pending, entry)
        if node is not None:
            node.pending = entry
        self.pace.add(window, resumed=token is not None)

    def spare(self) -> int:
        """Windows that could start fetching now and still find room in the budget."""
        startable = min(len(self.pending), self._room())
        return self.want() - self.fetching - startable

    def _room(self) -> int:
        # ``concurrency`` windows fetch at once; windows held by a full queue (ordered mode:
        # later windows fetched ahead) do not count, up to half as many, which bounds memory
        concurrency = self.want()
        free = concurrency - self.fetching
        if self.pending and self.pending[0][0] < min(self.held.values(), default=MAX_INSTANT):
            return max(0, free)  # wanted before anything buffered: it always may start
        return max(0, min(free, max(1, concurrency // 2) - len(self.held)))

    def fill(self) -> None:
        """Start the earliest pending windows while there is room, and the window the
        consumer waits for (ordered mode) whatever the room: nothing else can free it."""
        while self.pending and self._room() > 0:
            self.start(heapq.heappop(self.pending))
        head = self.head
        if head is not None and head.pending is not None:
            self.pending.remove(head.pending)
            heapq.heapify(self.pending)
            self.start(head.pending)

    def start(self, entry: _Pending) -> None:
        """Run a pending window (taken out of ``pending``) in a task of its own."""
        _, _, window, token, node = entry
        if node is not None:
            node.pending = None
        self.fetching += 1
        task = asyncio.create_task(self.run(window, token, node))
        self.tasks[task] = window.start
        task.add_done_callback(self.done)

    def done(self, task: asyncio.Task[None]) -> None:
        self.tasks.pop(task, None)
        if not self.failure.done():
            self.fill()

    @traced_window
    async def run(self, window: Window, token: str | None, node: _Node | None) -> None:
        try:
            async for page in self.window_pages(window, token):
                if node is not None:  # sub-windows have queues of their own, after this one
                    self.spawn(page, node)
                    await self.put_ahead(node, page, window)
                else:  # one queue: the page goes in before any page of what it spawned
                    await self.put(self.shared, page, window)
                    self.spawn(page, None)
        except Exception as exc:
            if not self.failure.done():
                self.failure.set_result(exc)
        finally:
            self.fetching -= 1
            self.pace.finish(window)

    def spawn(self, page: Page, node: _Node | None) -> None:
        """Make the windows ``page`` spawned pending (in their place after ``node``), start them."""
        after = node
        for sub in page.spawned:
            after = _Node(self.queue_pages, after) if after else None
            self.push(sub, None, after)
        self.fill()

    async def verify(self) -> None:
        """Check the order where a split of an earlier run relied on it: the page after its
        dropped token, which holds nothing before its cut when the server pages in ascending
        start (a server paging otherwise shows it there: a page boundary going back in time).
        Out of order, the order is broken (the repairs come with the next page delivered); in
        order, the repairs are kept only should a later page break it. One request, on
        resume only.
        """
        for repair in self.watch.unverified:
            if not await self._in_order_after(repair) and self.watch.violated(repair.window):
                self.watch.broke_on(None)
        self.watch.unverified = []

    async def _in_order_after(self, repair: Repair) -> bool:
        window = repair.window
        params = self.query.params(window, window.after)
        items, _ = await self.session.get("/interactions", params, decode_page)
        return in_order(items, window.end)

    def delivered(self, page: Page) -> Page:
        """``page`` as the consumer gets it: with the repair windows it spawns, which start
        now (ordered mode: in their place after its window)."""
        repairs = self.watch.delivered(page)
        if not repairs:
            return page
        after = self.head
        for window in repairs:
            after = _Node(self.queue_pages, after) if after else None
            self.push(window, None, after)
        self.fill()
        return attrs.evolve(page, spawned=page.spawned + repairs)

    async def put(self, queue: asyncio.Queue[Page], page: Page, window: Window) -> None:
        """Hand ``page`` on; while the queue is full the window gives up its fetching slot."""
        if not queue.full():
            queue.put_nowait(page)
            return
        async with self.holding(window):
            await queue.put(page)

    def may_buffer(self, node: _Node, page: Page) -> bool:
        """Whether ``page`` fits: the window being read holds ``capacity`` pages, the later
        ones share ``buffer_items`` interactions (one page always fits)."""
        if node is self.head:
            return node.queue.qsize() < node.capacity
        return not self.buffered or self.buffered + len(page.items) <= self.buffer_items

    async def put_ahead(self, node: _Node, page: Page, window: Window) -> None:
        """Queue ``page`` in its window's place once it fits (ordered mode)."""
        if not self.may_buffer(node, page):
            async with self.holding(window):
                while not self.may_buffer(node, page):
                    await self.changed.wait()
        node.queue.put_nowait(page)
        node.items += len(page.items)
        if node is not self.head:
            self.buffered += len(page.items)

    def taken(self, page: Page) -> None:
        """The consumer took ``page`` from the head window (ordered mode)."""
        head = self.head
        assert head is not None
        head.items -= len(page.items)
        if page.last:
            self.head = head.next
            if self.head is not None:  # its pages are the head's now, bounded by its capacity
                self.buffered -= self.head.items
                self.fill()  # it may not have started yet
        self.changed.set()
        self.changed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def holding(self, window: Window) -> AsyncIterator[None]:
        """While a window waits to hand a page on, it gives up its fetching slot."""
        me = asyncio.current_task()
        assert me is not None
        self.fetching -= 1
        self.held[me] = window.start
        self.fill()
        try:
            yield
        finally:
            self.fetching += 1
            del self.held[me]

    def per_minute(self) -> float | None:
        """The request budget's rate in force now (None: no client-side budget)."""
        return None if self.budget is None else self.budget.current_per_minute

    def want(self) -> int:
        """Windows that should be fetching at once now (``windows_wanted``)."""
        return windows_wanted(self.per_minute(), self.session.stats.latency, self.concurrency)

    @traced_pages
    async def window_pages(self, window: Window, token: str | None) -> AsyncIterator[Page]:
        """The pages of one window from ``token``: checked for order, split when dense."""
        watch = self.watch
        token = token or window.after
        seen_tokens = {token} if token else set()
        resumed = watch.repairs.get(window)
        dedup = Dedup(resumed.seen if resumed else (), by_guid=watch.broken)
        previous: datetime | None = None  # the last start of the previous page
        owns, covers, limit = window.owns, self.query.covers, self.query.limit
        clock = asyncio.get_running_loop().time
        while True:
            params = self.query.params(window, token)
            began = clock()
            items, next_token = await self.session.get("/interactions", params, decode_page)
            self.cycle = smoothed(self.cycle, clock() - began)  # the budget's wait included
            spawned: tuple[Window, ...] = ()
            breaks = not watch.broken and not in_order(items, previous) and watch.violated(window)
            if watch.broken:
                dedup.by_guid()
            previous = last_start(items, previous)
            self.pace.seen(
                window, [i.start for i in items], window.end if next_token is None else previous
            )
            cut: datetime | None = None
            repair: Repair | None = None
            if not watch.broken and next_token is not None and len(items) >= limit:
                spawned = self.split(window, items)
                if spawned:  # the page ends the window; items from the cut on come again
                    cut = spawned[0].start
                    items = [i for i in items if i.start < cut]
            kept = [i for i in items if owns(i.start) and covers(i.start) and dedup.first_time(i)]
            if cut is not None and next_token is not None:
                # the chain goes on after ``next_token``; only a repeat at the latest instant
                # (as ``Dedup`` drops while ordered) could come again: keep those guids only
                repair = Repair.of(window, cut, next_token, dedup.guids)
                watch.split()
                next_token = None
            page = Page(window, kept, next_token, spawned, repair)
            if breaks:
                watch.broke_on(page)
            yield page
            if next_token is None:
                return
            if next_token in seen_tokens:
                raise ResponseValidationError(
                    f"the API repeated a continuation token in window {window.key}:"
                    " stopped that window instead of paging forever"
                )
            seen_tokens.add(next_token)
            token = next_token

    def split(self, window: Window, items: list[Interaction]) -> tuple[Window, ...]:
        """Sub-windows for the rest of ``window`` after a full page, or () to keep paging.

        With a request budget and a latency seen, as many as make the window's chain end with
        the run (``chain_parts``, the work left as ``Pace`` learnt it, a page as long as a
        chain's pages took, the budget's wait included; ordered, before the
        windows after it fill the buffer ahead and the budget stalls), provided a cut shortens
        the run for the requests it adds (``paying_parts``, with the measured page time, the
        budget and every chain's pages left: if none does, the chain keeps its token); else
        as many as ``concurrency`` leaves idle (``sub_window_count``). The parts hold about equal
        expected items (the day's shape, ``Pace.cuts``). The cut is the page's last instant
        (floored to the millisecond), never inside a tie that fills the page: a page that is
        one instant only keeps following the token.
        """
        first, cut = items[0].start, floor_instant(items[-1].start)
        if not (first < cut < window.end and window.start < cut):
            return ()
        limit = self.query.limit
        per_minute, measured = self.per_minute(), self.session.stats.latency
        latency = max(measured, self.cycle) if measured else 0.0  # a chain waits for the budget
        pace = self.pace
        if per_minute and latency:  # the budget binds: weigh chains against partial pages
            work, stall, chains = pace.work(), False, pace.chains()
            if self.ordered:  # the budget stalls once later windows fill the buffer ahead
                room = max(0, self.buffer_items - self.buffered) / limit
                ahead = pace.work(until=window) + room
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
                    page_time=measured,
                )
                < 2
            ):
                return ()
        else:  # no budget known: fill what ``concurrency`` leaves idle
            spare, before = self.spare(), sum(1 for i in items if i.start < cut)
            parts = sub_window_count(
                first=first, cut=cut, items=before, end=window.end, page_size=limit, spare=spare
            )
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
                per_minute or 0,
                latency,
            )
        scale = pace.scale(window)
        subs = tuple(split_at(window, cut, pace.cuts(window, cut, parts)))
        pace.finish(window)
        for sub in subs:
            pace.add(sub, scale)
        return subs

    async def close(self) -> None:
        """Cancel what still runs (the consumer stopped or a window failed)."""
        self.pending.clear()
        self.head = None  # nothing more starts for the consumer
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _next_page(queue: asyncio.Queue[Page], failure: asyncio.Future[BaseException]) -> Page:
    """The next page of ``queue``, or the first failure of any window."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.wait((getter, failure), return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    raise failure.result()
