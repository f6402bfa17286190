"""One window's chain of pages: fetched token after token, checked for order, de-duplicated,
cut where the window splits, and stopped should the API repeat a token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Protocol

from .._errors import ResponseValidationError
from .._http.session import smoothed
from .._models import Interaction
from .._page import decode_page
from .._query import SearchQuery
from .._tracing import traced_pages
from .._windows import Page, Repair, Window
from .order import Dedup, in_order, last_start
from .order_watch import OrderWatch
from .pacing import Pace

__all__ = ["PageChain", "PageGetter"]

PageBody = tuple[list[Interaction], str | None]  # a search page: its items, the next token


class PageGetter(Protocol):
    """Where search pages come from (the session's ``get``)."""

    async def get(
        self, path: str, params: Mapping[str, str] | None, parse: Callable[[bytes], PageBody]
    ) -> PageBody:
        """GET ``path`` with ``params`` and ``parse`` the body."""


class PageChain:
    """The pages of a search's windows from ``source``, each window's chain followed from its
    token: every page checked against ``watch``, learnt by ``pace``, and a full page offered
    to ``split`` (sub-windows for the rest of its window, or () to keep paging)."""

    def __init__(
        self,
        source: PageGetter,
        query: SearchQuery,
        watch: OrderWatch,
        pace: Pace,
        split: Callable[[Window, list[Interaction]], tuple[Window, ...]],
    ) -> None:
        self.source, self.query, self.watch = source, query, watch
        self.pace, self.split = pace, split
        self.cycle = 0.0  # seconds a chain takes a page: the budget's wait and the latency

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
        items, _ = await self.source.get("/interactions", params, decode_page)
        return in_order(items, window.end)

    @traced_pages
    async def pages(self, window: Window, token: str | None) -> AsyncIterator[Page]:
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
            items, next_token = await self.source.get("/interactions", params, decode_page)
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
