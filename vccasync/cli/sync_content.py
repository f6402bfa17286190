"""``sync --content-dest``: the new and changed pieces of each pass into the bulk downloads.

One :func:`~vccasync.content.bulk.download_all` runs for the whole command, fed through a
queue: each "new" change brings its pieces, each "changed" one only the pieces that are new
or differ from the stored version (:func:`~vccasync.sync.changed_pieces`). A changed piece
already on disk is moved aside first, so the pipeline (which skips a file whose manifest entry
and size agree) fetches the new version; a new piece already there, listed in the manifest
with its size, is not fetched again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import suppress
from pathlib import Path

import attrs

from vccasync.client import VccClient
from vccasync.content.bulk import BulkProgress
from vccasync.content.paths import content_path
from vccasync.models import Interaction
from vccasync.sync import Change, changed_pieces

__all__ = ["ContentFeed"]


class ContentFeed:
    """Downloads of the pieces changes bring, running beside the passes; :meth:`close` waits
    for the ones queued."""

    def __init__(
        self, vcc: VccClient, dest: Path, types: Collection[str] | None, workers: int
    ) -> None:
        self.dest = dest
        self.progress = BulkProgress()
        self._queue: asyncio.Queue[Interaction | None] = asyncio.Queue(maxsize=2 * workers)
        self._task = asyncio.create_task(
            vcc.download_all(
                self._items(), dest, types=types, workers=workers, progress=self.progress
            )
        )

    async def _items(self) -> AsyncIterator[Interaction]:
        while (item := await self._queue.get()) is not None:
            yield item

    async def add(self, change: Change) -> None:
        """Queue the pieces ``change`` brings (none for a removal)."""
        if change.kind == "removed":
            return
        current = change.interaction
        pieces = changed_pieces(current, change.previous)
        if not pieces:
            return
        if change.previous is not None:
            before = {piece.content_key for piece in change.previous.content}
            for piece in pieces:
                if piece.content_key in before:
                    await asyncio.to_thread(self._set_aside, current, piece.content_key)
        if self._task.done():  # the downloads failed: raise their error here
            await self._task
        await self._queue.put(attrs.evolve(current, content=pieces))

    def _set_aside(self, item: Interaction, key: str) -> None:
        for piece in item.content:
            if piece.content_key == key:
                path = content_path(self.dest, item.start, item.guid, key, piece.content_type)
                with suppress(FileNotFoundError):
                    path.unlink()

    async def close(self) -> BulkProgress:
        """Let the queued downloads finish; the counters."""
        if not self._task.done():
            await self._queue.put(None)
        return await self._task

    def cancel(self) -> None:
        """Stop at once (the command is being interrupted)."""
        self._task.cancel()
