"""Downloads that drain a sync store's durable content queue (``sync --content-dest``).

The pieces a sync owes the archive are rows of its store (:mod:`vccasync.sync._queue`), queued
in the same transaction as the interaction that brings them, so committing rows never waits
for downloads and a run killed anywhere forgets nothing. :class:`ContentFeed` takes the rows
that are due (oldest first, no more than the workers can download at once), feeds them to one
:func:`~vccasync.content._bulk.download_all` for the whole command, and settles each outcome
back into the store: a piece on disk leaves the queue; a failure stays with one more attempt,
its error and a next try after a backoff (1, 2, 4 ... minutes, at most an hour), across runs;
a 404 (gone upstream) leaves the queue, counted. A queued piece whose archived file is of
another version has that outdated file removed first (with its ``.part`` and sidecar), so
the archive never holds a stale version as current.

:meth:`ContentFeed.stop`: no new download starts; those in flight finish (the caller bounds
them by ``--stop-timeout``); the queue keeps the rest. :meth:`ContentFeed.finish` (one-shot
runs): download what is due, then end.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Sequence,
)
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import attrs

from .._errors import NotFoundError
from .._models import Interaction
from ..sync._queue import QueuedPiece, QueueStatus, Settlement
from ._bulk import BulkProgress, PieceDone
from ._download import part_path, sidecar_path
from ._manifest import MANIFEST_NAME, Manifest
from ._paths import content_path

__all__ = ["BulkDownloader", "ContentFeed", "ContentQueue", "QueueObserver", "Settled"]

IDLE: Final = 30.0  # seconds between looks at a queue that has nothing due


@attrs.frozen
class Settled:
    """Downloads since the last report, and the queue after them."""

    done: int
    failed: int
    queue: QueueStatus

    def summary(self, now: datetime) -> str:
        """``12 downloaded, 1 failed; content queue: ...``."""
        return f"{self.done:,} downloaded, {self.failed:,} failed; {self.queue.summary(now)}"


class BulkDownloader(Protocol):
    """The one bulk download the feed runs, e.g. a client's bound ``download_all``: the
    content of ``interactions`` under ``dest``, ``workers`` at once, ``on_piece`` told how
    each piece ended."""

    def __call__(
        self,
        interactions: AsyncIterable[Interaction],
        dest: Path,
        *,
        workers: int,
        progress: BulkProgress,
        manifest: Manifest,
        on_piece: PieceDone,
    ) -> Awaitable[BulkProgress]: ...


class ContentQueue(Protocol):
    """The queue side of a sync store (:class:`~vccasync.stores._contract.SyncStore`)."""

    async def due(
        self, now: datetime, limit: int, skip: Collection[tuple[str, str]] = ()
    ) -> list[QueuedPiece]: ...

    async def settle(self, outcomes: Sequence[Settlement], now: datetime) -> None: ...

    async def queue_status(self) -> QueueStatus: ...

    async def wait_queued(self, seconds: float) -> None: ...


class QueueObserver(Protocol):
    """Told the queue's state after downloads settle (the Prometheus metrics implement it)."""

    def queue_seen(self, status: QueueStatus) -> None:
        """The queue as it stands now."""


class ContentFeed:
    """Downloads of a store's queued pieces, running on their own beside the passes.

    ``download_all`` runs the downloads (``vcc.download_all``); ``queue`` is the store's.
    ``now`` is the clock of next tries (default the UTC wall clock); ``idle`` the longest
    wait between looks at a queue with nothing due (pieces queued by this process wake it at
    once).
    """

    def __init__(
        self,
        download_all: BulkDownloader,
        queue: ContentQueue,
        dest: Path,
        workers: int,
        *,
        now: Callable[[], datetime] | None = None,
        observer: QueueObserver | None = None,
        idle: float = IDLE,
    ) -> None:
        self.dest = dest
        self.progress = BulkProgress()
        self.status = QueueStatus(0, 0, None, None)
        self._download_all = download_all
        self._queue = queue
        self._workers = workers
        self._now = now or (lambda: datetime.now(UTC))
        self._observer = observer
        self._idle = idle
        self._in_flight: dict[tuple[str, str], str] = {}  # taken, outcome not yet settled
        self._outcomes: list[Settlement] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._finishing = False
        self._reported = (0, 0)
        self._task: asyncio.Task[BulkProgress] | None = None

    def start(self) -> None:
        """Start draining the queue."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> BulkProgress:
        manifest = await asyncio.to_thread(Manifest.load, self.dest / MANIFEST_NAME)
        self._manifest = manifest
        try:
            return await self._download_all(
                self._items(manifest),
                self.dest,
                workers=self._workers,
                progress=self.progress,
                manifest=manifest,
                on_piece=self._ended,
            )
        finally:
            await self._settle()

    async def _items(self, manifest: Manifest) -> AsyncIterator[Interaction]:
        while not self._stopping:
            await self._settle()
            room = self._workers - len(self._in_flight)  # none waits: a stop cuts no queue
            taken = [] if room <= 0 else await self._take(room)
            if taken:
                for piece in taken:
                    if self._stopping:
                        return
                    await asyncio.to_thread(_set_aside, manifest, self.dest, piece)
                    self._in_flight[piece.key] = piece.version
                    yield piece.interaction
                continue
            if self._finishing and not self._in_flight and not self._outcomes:
                return
            await self._rest()

    async def _take(self, room: int) -> list[QueuedPiece]:
        return await self._queue.due(self._now(), room, set(self._in_flight))

    async def _rest(self) -> None:
        """Wait for an outcome, a stop, pieces queued, or the next try due."""
        wait = self._idle
        if self._finishing:
            wait = min(wait, 1.0)
        retry = self.status.next_try
        if retry is not None:
            wait = max(0.05, min(wait, (retry - self._now()).total_seconds()))
        woken = asyncio.ensure_future(self._wake.wait())
        queued = asyncio.ensure_future(self._queue.wait_queued(wait))
        try:
            await asyncio.wait((woken, queued), return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            queued.cancel()
            with suppress(asyncio.CancelledError):
                await queued
        self._wake.clear()

    def _ended(self, guid: str, key: str, error: BaseException | None) -> None:
        version = self._in_flight.get((guid, key))
        if version is None:
            return
        gone = isinstance(error, NotFoundError)
        text = None if error is None else (str(error) or type(error).__name__)
        self._outcomes.append(Settlement(guid, key, version, text, gone))
        self._wake.set()

    async def _settle(self) -> None:
        """Write the outcomes so far into the store; refresh the queue's status."""
        outcomes, self._outcomes = self._outcomes, []
        if outcomes:
            await self._queue.settle(outcomes, self._now())
            for done in outcomes:
                self._in_flight.pop((done.guid, done.content_key), None)
        if outcomes or self.status.depth or self._task is None:
            await self.refresh()

    async def refresh(self) -> QueueStatus:
        """Read the queue's status from the store (and tell the observer)."""
        self.status = await self._queue.queue_status()
        if self._observer is not None:
            self._observer.queue_seen(self.status)
        return self.status

    def report(self) -> Settled:
        """What the downloads did since the last report, with the queue's last status."""
        done = self.progress.files_done + self.progress.files_skipped
        failed = self.progress.files_failed
        settled = Settled(done - self._reported[0], failed - self._reported[1], self.status)
        self._reported = (done, failed)
        return settled

    def check(self) -> None:
        """Raise the error the downloads stopped on, if they did (a lost lease, a full disk)."""
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error

    def stop(self) -> None:
        """No new download starts; those in flight go on (bound them with :meth:`wait`)."""
        self._stopping = True
        self._wake.set()

    async def finish(self) -> BulkProgress:
        """Download what is due now (the pieces of this run's passes included), then end."""
        self._finishing = True
        self._wake.set()
        return await self.wait()

    async def wait(self) -> BulkProgress:
        """Wait for the downloads to end (after :meth:`stop` or :meth:`finish`)."""
        if self._task is None:
            return self.progress
        return await self._task

    def cancel(self) -> None:
        """Stop at once (the command is being interrupted)."""
        if self._task is not None:
            self._task.cancel()


def _set_aside(manifest: Manifest, dest: Path, queued: QueuedPiece) -> None:
    """Remove the archived file of another version than ``queued``'s (with its ``.part`` and
    sidecar): the archive never holds a stale version as current."""
    item = queued.interaction
    piece = item.content[0]
    entry = manifest.get(item.guid, piece.content_key)
    if entry is None or entry.holds(piece):
        return
    path = content_path(dest, item.start, item.guid, piece.content_key, piece.content_type)
    for outdated in (path, part_path(path), sidecar_path(path)):
        with suppress(FileNotFoundError):
            outdated.unlink()
