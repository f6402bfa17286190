"""Which windows fetch when: pending windows start earliest first, as many as are wanted."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Generic, TypeAlias, TypeVar

from .._windows import Window

__all__ = ["Entry", "Scheduler"]

MAX_INSTANT = datetime.max.replace(tzinfo=UTC)
N = TypeVar("N")  # a window's place in the output (ordered mode), opaque here
Entry: TypeAlias = tuple[datetime, int, Window, str | None, N | None]  # a pending window


class Scheduler(Generic[N]):
    """The windows of one search: pending (a heap, earliest start first), then running in a
    task each, ``run(window, token, place)``, at most ``wanted()`` fetching at once.

    A window waiting to hand a page on gives up its fetching slot (:meth:`holding`); up to
    half as many held windows as are wanted, which bounds what is fetched ahead. ``first``
    names the place of the window the consumer waits for: it starts whatever the room. The
    first failure of any window (:meth:`fail`) is ``failure``; nothing starts after it.
    """

    def __init__(
        self,
        run: Callable[[Window, str | None, N | None], Coroutine[Any, Any, None]],
        *,
        wanted: Callable[[], int],
        first: Callable[[], N | None],
    ) -> None:
        self._run, self._wanted, self._first = run, wanted, first
        self.failure: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self.pending: list[Entry[N]] = []  # a heap, earliest start first
        self.tasks: set[asyncio.Task[None]] = set()  # running windows
        self.held: dict[asyncio.Task[None], datetime] = {}  # of those, waiting to hand a page on
        self.fetching = 0  # windows running and not held
        self._order = itertools.count()
        self._waiting: dict[N, Entry[N]] = {}  # the pending entry of each place

    def push(self, window: Window, token: str | None, place: N | None) -> None:
        """Make ``window`` pending from ``token``, for ``place`` (started by :meth:`fill`)."""
        entry = (window.start, next(self._order), window, token, place)
        heapq.heappush(self.pending, entry)
        if place is not None:
            self._waiting[place] = entry

    def spare(self) -> int:
        """Windows that could start fetching now and still find room in the budget."""
        startable = min(len(self.pending), self._room())
        return self._wanted() - self.fetching - startable

    def _room(self) -> int:
        # ``wanted`` windows fetch at once; held windows do not count, up to half as many
        concurrency = self._wanted()
        free = concurrency - self.fetching
        if self.pending and self.pending[0][0] < min(self.held.values(), default=MAX_INSTANT):
            return max(0, free)  # wanted before anything held: it always may start
        return max(0, min(free, max(1, concurrency // 2) - len(self.held)))

    def fill(self) -> None:
        """Start the earliest pending windows while there is room, and the consumer's
        (``first``) whatever the room: nothing else can free it."""
        while self.pending and self._room() > 0:
            self.start(heapq.heappop(self.pending))
        first = self._first()
        entry = None if first is None else self._waiting.get(first)
        if entry is not None:
            self.pending.remove(entry)
            heapq.heapify(self.pending)
            self.start(entry)

    def start(self, entry: Entry[N]) -> None:
        """Run a pending window (taken out of ``pending``) in a task of its own."""
        _, _, window, token, place = entry
        if place is not None:
            self._waiting.pop(place, None)
        self.fetching += 1
        task = asyncio.create_task(self._fetch(window, token, place))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    async def _fetch(self, window: Window, token: str | None, place: N | None) -> None:
        try:
            await self._run(window, token, place)
        finally:
            self.fetching -= 1

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not self.failure.done():
            self.fill()

    def fail(self, exc: BaseException) -> None:
        """A window failed: the first failure is the search's."""
        if not self.failure.done():
            self.failure.set_result(exc)

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

    async def close(self) -> None:
        """Start nothing more and cancel what still runs."""
        self.pending.clear()
        self._waiting.clear()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
