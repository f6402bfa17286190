"""Where fetched pages wait for the consumer: one bounded queue (unordered), or a queue per
window in output order within a bound on what is fetched ahead (ordered)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from .._windows import Page

__all__ = ["Hold", "Node", "OrderedBuffer", "SharedQueue", "next_page"]

Hold = Callable[[], AbstractAsyncContextManager[None]]  # gives up a fetching slot meanwhile


async def next_page(queue: asyncio.Queue[Page], failure: asyncio.Future[BaseException]) -> Page:
    """The next page of ``queue``, or the first failure of any window."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.wait((getter, failure), return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    raise failure.result()


class SharedQueue:
    """Unordered: every window's pages in one queue of ``pages`` pages."""

    def __init__(self, pages: int) -> None:
        self.queue = asyncio.Queue[Page](pages)

    async def put(self, page: Page, hold: Hold) -> None:
        """Hand ``page`` on; while the queue is full the window ``hold``s."""
        if not self.queue.full():
            self.queue.put_nowait(page)
            return
        async with hold():
            await self.queue.put(page)

    async def get(self, failure: asyncio.Future[BaseException]) -> Page:
        """The next page, or the first failure of any window."""
        return await next_page(self.queue, failure)


class Node:
    """A window's place in the ordered output: its queue, then the next window's node."""

    __slots__ = ("capacity", "items", "next", "queue")

    def __init__(self, capacity: int, after: Node | None = None) -> None:
        self.capacity = capacity
        self.queue = asyncio.Queue[Page]()  # bounded by the buffer (``may_buffer``)
        self.items = 0  # interactions in ``queue``
        self.next: Node | None = None
        if after is not None:
            self.next, after.next = after.next, self


class OrderedBuffer:
    """Ordered: a queue per window, chained in output order from the ``head`` (the window
    the consumer reads). The head's queue holds ``capacity`` pages; the later windows'
    share ``buffer_items`` interactions (one page always fits). ``on_head`` is told when
    the consumer moves on to a window (it may not have started yet).
    """

    def __init__(self, capacity: int, buffer_items: int, *, on_head: Callable[[], None]) -> None:
        self.capacity, self.buffer_items = capacity, buffer_items
        self.head: Node | None = None
        self.buffered = 0  # interactions queued for windows after the head
        self.changed = asyncio.Event()  # set (and replaced) when the consumer takes a page
        self._on_head = on_head

    def insert(self, after: Node | None) -> Node:
        """A window's place right after ``after`` (None: the first place, the head)."""
        node = Node(self.capacity, after)
        if after is None:
            self.head = self.head or node
        return node

    def room(self) -> int:
        """Interactions the windows after the head may still queue."""
        return max(0, self.buffer_items - self.buffered)

    def may_buffer(self, node: Node, page: Page) -> bool:
        """Whether ``page`` fits in ``node``'s queue now."""
        if node is self.head:
            return node.queue.qsize() < node.capacity
        return not self.buffered or self.buffered + len(page.items) <= self.buffer_items

    async def put(self, node: Node, page: Page, hold: Hold) -> None:
        """Queue ``page`` in its window's place once it fits (``hold``ing meanwhile)."""
        if not self.may_buffer(node, page):
            async with hold():
                while not self.may_buffer(node, page):
                    await self.changed.wait()
        node.queue.put_nowait(page)
        node.items += len(page.items)
        if node is not self.head:
            self.buffered += len(page.items)

    async def get(self, failure: asyncio.Future[BaseException]) -> Page:
        """The head window's next page, or the first failure of any window."""
        assert self.head is not None
        return await next_page(self.head.queue, failure)

    def taken(self, page: Page) -> None:
        """The consumer took ``page`` from the head window."""
        head = self.head
        assert head is not None
        head.items -= len(page.items)
        if page.last:
            self.head = head.next
            if self.head is not None:  # its pages are the head's now, bounded by its capacity
                self.buffered -= self.head.items
                self._on_head()
        self.changed.set()
        self.changed = asyncio.Event()

    def close(self) -> None:
        """The consumer is gone: no window is read any more."""
        self.head = None
