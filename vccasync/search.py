"""The fan-out: windows run concurrently, pages stream through bounded queues, in order.

Memory is bounded by ``concurrency`` x ``queue_pages`` pages however long the range.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from attrs import frozen

from .converter import decode_page
from .errors import ResponseValidationError
from .models import Interaction
from .query import SearchQuery
from .session import Session
from .windows import Window, split

__all__ = ["InteractionSearch", "Page", "WindowPlan"]

WindowPlan = Sequence[tuple[Window, str | None]]  # windows to run, each from its token


@frozen
class Page:
    """One API page of a window, already filtered to what the window owns.

    A checkpoint follows pages generically: after a page, ``window`` resumes from
    ``next_token`` (or is finished when ``last``), and each window of ``spawned`` (windows
    that took over the rest of ``window``'s span) is pending from its start.
    """

    window: Window
    items: list[Interaction]
    next_token: str | None
    spawned: tuple[Window, ...] = ()

    @property
    def last(self) -> bool:
        """Whether this page ends its window."""
        return self.next_token is None


class _TieGuard:
    """Drops an interaction seen again at the same instant (bounded by the size of a tie)."""

    def __init__(self) -> None:
        self._instant: object = None
        self._guids: set[str] = set()

    def first_time(self, item: Interaction) -> bool:
        if item.start != self._instant:
            self._instant, self._guids = item.start, {item.guid}
            return True
        if item.guid in self._guids:
            return False
        self._guids.add(item.guid)
        return True


class InteractionSearch:
    """An ``async for`` over interactions; ``pages()`` iterates whole pages instead.

    ``ordered=True`` yields windows in chronological order (later windows are fetched ahead
    into bounded queues); ``ordered=False`` yields pages as they arrive.
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
    ) -> None:
        self._session = session
        self.query = query
        self.plan: list[tuple[Window, str | None]] = (
            [(w, None) for w in split(query.start, query.end)] if plan is None else list(plan)
        )
        self._concurrency = concurrency
        self._ordered = ordered
        self._queue_pages = queue_pages

    @property
    def windows(self) -> list[Window]:
        """The windows this search runs."""
        return [window for window, _ in self.plan]

    async def __aiter__(self) -> AsyncIterator[Interaction]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def pages(self) -> AsyncIterator[Page]:
        """Every page of every window (empty and last pages included, for checkpoints)."""
        if not self.plan:
            return
        count = len(self.plan)
        queues = [
            asyncio.Queue[Page](self._queue_pages) for _ in range(count if self._ordered else 1)
        ]
        failure: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        slots = asyncio.Semaphore(self._concurrency)
        tasks: list[asyncio.Task[None]] = []

        async def run(queue: asyncio.Queue[Page], window: Window, token: str | None) -> None:
            try:
                async for page in self._window_pages(window, token):
                    await queue.put(page)
            except Exception as exc:
                if not failure.done():
                    failure.set_result(exc)
            finally:
                slots.release()

        async def launch() -> None:
            for index, (window, token) in enumerate(self.plan):
                await slots.acquire()
                queue = queues[index if self._ordered else 0]
                tasks.append(asyncio.create_task(run(queue, window, token)))

        launcher = asyncio.create_task(launch())
        try:
            for queue in queues:
                remaining = 1 if self._ordered else count
                while remaining:
                    page = await _next_page(queue, failure)
                    remaining -= page.last
                    yield page
        finally:
            for task in (launcher, *tasks):
                task.cancel()
            await asyncio.gather(launcher, *tasks, return_exceptions=True)

    async def _window_pages(self, window: Window, token: str | None) -> AsyncIterator[Page]:
        seen_tokens = {token} if token else set()
        guard = _TieGuard()
        owns, covers = window.owns, self.query.covers
        while True:
            params = self.query.params(window, token)
            items, next_token = await self._session.get("/interactions", params, decode_page)
            kept = [i for i in items if owns(i.start) and covers(i.start) and guard.first_time(i)]
            yield Page(window, kept, next_token)
            if next_token is None:
                return
            if next_token in seen_tokens:
                raise ResponseValidationError(
                    f"the API repeated a continuation token in window {window.key}:"
                    " stopped that window instead of paging forever"
                )
            seen_tokens.add(next_token)
            token = next_token


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
