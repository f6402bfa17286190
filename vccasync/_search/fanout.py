"""The fan-out: windows run concurrently, pages stream through bounded queues, in order.

Memory is bounded however long the range: unordered, by one shared queue of ``queue_pages``
pages; ordered, by ``queue_pages`` for the window being read plus ``buffer_items``
interactions fetched ahead for later windows, and a page each for windows waiting to add one
(at most ``buffer_items // limit`` windows run: twice the buffer at worst, whatever the cap).
Dense windows are split on the fly (``Page.spawned``) so that the request budget, not the
latency of one chain of pages, bounds the speed.

:class:`InteractionSearch` is the public face; each ``pages()`` call is a
:class:`~.search_run.SearchRun` wiring one object per concern: the :mod:`.scheduler`, the
:mod:`.buffers`, each window's :mod:`.chain` of pages, the :mod:`.split_decision` and the
:mod:`.order_watch`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._models import Interaction
from .._query import SearchQuery
from .._tracing import traced_search
from .._windows import Page, ResumePlan, Window, WindowPlan, split
from .search_run import PacingBudget, PageSource, SearchRun, windows_wanted

__all__ = ["InteractionSearch", "Page", "WindowPlan", "windows_wanted"]

BUFFER_ITEMS = 48_000  # ordered: interactions fetched ahead for later windows, at most


class InteractionSearch:
    """An ``async for`` over interactions; ``pages()`` iterates whole pages instead.

    ``ordered=True`` yields windows in chronological order (later windows are fetched ahead
    into bounded queues); ``ordered=False`` yields pages as they arrive. ``plan`` resumes a
    search: the windows still to run, each from its token; a :class:`ResumePlan` (what
    ``Checkpoint.plan()`` gives) also carries the repairs of windows split earlier.
    ``session``: where pages come from (a ``Session``); ``budget``: the request budget that
    paces and widens the search (None: none).
    """

    def __init__(
        self,
        session: PageSource,
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
        run = SearchRun(
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
            while (page := await run.next_page()) is not None:
                yield page
        finally:
            await run.close()
