"""The one asynchronous ``Sink`` protocol, and a blocking store run on a thread of its own.

Every sink is used the same way::

    async with await open_sink(output, query) as sink:
        async for page in vcc.search(query, plan=sink.checkpoint.plan()).pages():
            await sink.write(page)

``write`` stores a page's interactions and advances ``checkpoint`` as one step, so a run killed
at any moment resumes without losing or repeating an interaction. File stores do blocking
work (writes, fsync, renames, SQLite commits): ``ThreadedSink`` runs it on one thread per sink,
in submission order, so the event loop and every request in flight go on meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self, TypeVar, cast

from .._errors import InvalidRequestError
from .._jsonio import dumps
from .._query import SearchQuery
from .._search import InteractionSearch
from .._windows import Page
from ._checkpoint import Checkpoint

try:  # flock keeps two runs from writing one output (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


__all__ = [
    "BlockingStore",
    "Sink",
    "SinkContext",
    "ThreadedSink",
    "cannot_write",
    "dumps",
    "lock",
    "on_thread",
    "refuse_other_query",
    "write_search",
]

T = TypeVar("T")


class Sink(Protocol):
    """Where the pages of one search go, with the checkpoint they have reached."""

    @property
    def target(self) -> str:
        """The output's name for messages (never a password)."""

    @property
    def checkpoint(self) -> Checkpoint:
        """What has been written so far, earlier runs included; ``plan()`` resumes from it."""

    async def write(self, page: Page) -> None:
        """Store the page's interactions and advance the checkpoint, as one step."""

    async def close(self) -> None:
        """Release the output (waits for the writes under way)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


async def write_search(
    sink: Sink, search: InteractionSearch, on_page: Callable[[Page], None] | None = None
) -> None:
    """Write every page of ``search`` into ``sink``, calling ``on_page`` after each.

    Stopped meanwhile (an error, a cancellation, Ctrl-C), the search is closed before the
    exception goes on, so no fetch outlives the run.
    """
    pages = cast(AsyncGenerator[Page, None], search.pages())
    async with aclosing(pages):
        async for page in pages:
            await sink.write(page)
            if on_page is not None:
                on_page(page)


class SinkContext:
    """``async with sink:`` closes it at the end."""

    async def close(self) -> None:
        """Release the output."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class BlockingStore(Protocol):
    """A store whose every call blocks (file or SQLite I/O); ``ThreadedSink`` drives it."""

    target: str
    checkpoint: Checkpoint

    def write_page(self, page: Page) -> None:
        """Write the page's interactions and advance the checkpoint, as one step."""

    def close(self) -> None:
        """Release the output."""


class ThreadedSink(SinkContext):
    """A ``Sink`` over a blocking store: opening, every write and closing run on one thread
    of the sink's own, one after another in the order they were asked for."""

    def __init__(self, store: BlockingStore, writer: ThreadPoolExecutor) -> None:
        self._store = store
        self._writer = writer

    @classmethod
    async def start(cls, opener: Callable[[], BlockingStore]) -> Self:
        """The sink of the store ``opener()`` opens on the sink's thread."""
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vccasync-sink")
        try:
            store = await on_thread(writer, opener)
        except BaseException:
            writer.shutdown(wait=False)
            raise
        return cls(store, writer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"

    @property
    def target(self) -> str:
        """The output's name for messages."""
        return self._store.target

    @property
    def checkpoint(self) -> Checkpoint:
        """What has been written so far."""
        return self._store.checkpoint

    async def write(self, page: Page) -> None:
        """Write the page and its checkpoint on the sink's thread; the loop runs meanwhile."""
        await on_thread(self._writer, self._store.write_page, page)

    async def close(self) -> None:
        """Close the store after the writes already asked for, then end the thread."""
        try:
            await on_thread(self._writer, self._store.close)
        finally:
            self._writer.shutdown(wait=False)


async def on_thread(writer: ThreadPoolExecutor, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on ``writer``'s thread; a cancelled caller does not cut it short."""
    future = asyncio.get_running_loop().run_in_executor(writer, call, *args)
    return await asyncio.shield(future)


def refuse_other_query(target: Path, stored: Checkpoint, query: SearchQuery) -> None:
    """``InvalidRequestError`` unless ``stored`` is the checkpoint of ``query``."""
    if not stored.matches(query):
        theirs = " ".join(f"{k}={v}" for k, v in stored.query.items())
        raise InvalidRequestError(
            f"{target} holds a different backfill ({theirs}): use the same query to resume,"
            " another output, or --overwrite to start again"
        )


def cannot_write(target: Path, exc: Exception) -> InvalidRequestError:
    """The one-line error of an output that cannot be written."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return InvalidRequestError(f"cannot write {target}: {reason}")


def lock(handle: IO[bytes], target: Path) -> None:
    """Hold ``target`` for this run; ``InvalidRequestError`` if another run holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise InvalidRequestError(f"{target} is being written by another vccasync run") from None
