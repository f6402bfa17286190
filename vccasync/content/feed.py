"""The pieces a sync's changes bring, into the bulk downloads (``sync --content-dest``).

One :func:`~vccasync.content.bulk.download_all` runs for the whole command, fed through a
queue: each "new" change brings its pieces, each "changed" one only the pieces that are new
or differ from the stored version (:func:`~vccasync.sync.changed_pieces`). A changed piece's
outdated file and its ``.part`` (with the part's sidecar) are removed first, together, whatever
``--type`` says: the pipeline then fetches the new version, the archive never holds a stale
version as current, and purge, finding the file its manifest entry names gone, keeps the piece.
A new piece already there, listed in the manifest with its version, is not fetched again.

A piece whose download failed is not forgotten: after each pass's downloads end
(:meth:`ContentFeed.settle`) the pieces still missing are counted and queued again with the
next pass (:meth:`ContentFeed.retry`).

A page's rows commit once its changes are queued, not once their pieces are on disk, so a run
killed in between leaves rows that are current but pieces that are not, and the next run sees
no change there. Holding each page's commit until its downloads end would tie the search to
the downloads' pace and still repeat a killed page's changes; instead each run first *catches
up* (:meth:`ContentFeed.catch_up`): the present rows the store's last pass wrote (under way or
complete: the only pass that can have pieces in flight, as the feed is drained between passes,
:meth:`ContentFeed.drain`) are checked against the manifest and the files, and every wanted
piece missing, of another size, or whose file is gone is queued again. That is a pass's new
and changed rows, never the whole store; the pipeline skips whatever is already complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Collection, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Final, Protocol

import attrs

from ..models import Content, Interaction
from ..sync import Change, changed_pieces
from .bulk import BulkProgress
from .download import part_path, sidecar_path
from .manifest import MANIFEST_NAME, Manifest
from .paths import content_path

__all__ = ["BulkDownloader", "ContentFeed", "Settled", "missing_pieces"]

DRAIN_POLL: Final = 0.05  # seconds between looks at the downloads under way


@attrs.frozen
class Settled:
    """The downloads since the last settling: done, failed, and pieces still missing."""

    done: int
    failed: int
    missing: int

    def summary(self) -> str:
        """``12 downloaded, 1 failed; 2 pieces not downloaded``."""
        return (
            f"{self.done:,} downloaded, {self.failed:,} failed;"
            f" {self.missing:,} pieces not downloaded"
        )


class BulkDownloader(Protocol):
    """What the feed calls (``VccClient`` has it)."""

    async def download_all(
        self,
        interactions: AsyncIterable[Interaction],
        dest: str | Path,
        *,
        types: Collection[str] | None = None,
        workers: int | None = None,
        progress: BulkProgress | None = None,
        manifest: Manifest | None = None,
    ) -> BulkProgress: ...


class ContentFeed:
    """Downloads of the pieces changes bring, running beside the passes; :meth:`close` waits
    for the ones queued."""

    def __init__(
        self, vcc: BulkDownloader, dest: Path, types: Collection[str] | None, workers: int
    ) -> None:
        self.dest = dest
        self.types = None if types is None else frozenset(types)
        self.progress = BulkProgress()
        self._queue: asyncio.Queue[Interaction | None] = asyncio.Queue(maxsize=2 * workers)
        self._added = self._taken = 0
        self._waiting = False
        self._queued: dict[tuple[str, str], Interaction] = {}  # until known downloaded
        self._counted = (0, 0)  # files done and failed at the last settling
        self._manifest = asyncio.create_task(
            asyncio.to_thread(Manifest.load, dest / MANIFEST_NAME)
        )  # one index of the archive for the run: the downloads' and the catch-up's
        self._task = asyncio.create_task(self._download(vcc, workers))

    async def _download(self, vcc: BulkDownloader, workers: int) -> BulkProgress:
        return await vcc.download_all(
            self._items(),
            self.dest,
            types=self.types,
            workers=workers,
            progress=self.progress,
            manifest=await self._manifest,
        )

    async def _items(self) -> AsyncIterator[Interaction]:
        while True:
            self._waiting = True
            item = await self._queue.get()
            self._waiting = False
            if item is None:
                return
            self._taken += 1
            yield item

    async def _put(self, item: Interaction) -> None:
        if self._task.done():  # the downloads failed: raise their error here
            await self._task
        self._added += 1
        for piece in item.content:
            self._queued[(item.guid, piece.content_key)] = attrs.evolve(item, content=(piece,))
        await self._queue.put(item)

    async def add(self, change: Change) -> None:
        """Queue the pieces ``change`` brings (none for a removal, whose missing pieces are
        not retried any more)."""
        if change.kind == "removed":
            guid = change.interaction.guid
            self._queued = {k: v for k, v in self._queued.items() if k[0] != guid}
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
        await self._put(attrs.evolve(current, content=pieces))

    async def catch_up(self, rows: Sequence[Interaction]) -> int:
        """Queue the wanted pieces of ``rows`` the archive lacks; how many pieces."""
        manifest = await self._manifest
        lacking = await asyncio.to_thread(missing_pieces, rows, manifest, self.dest, self.types)
        for item in lacking:
            await self._put(item)
        return sum(len(item.content) for item in lacking)

    async def drain(self) -> None:
        """Wait until every piece queued so far is downloaded (or failed)."""
        progress = self.progress
        while not self._task.done() and not (  # noqa: ASYNC110 - bulk signals no idleness
            self._waiting
            and self._taken == self._added
            and progress.files_finished >= progress.files_found
        ):
            await asyncio.sleep(DRAIN_POLL)
        if self._task.done():
            await self._task

    def settle(self) -> Settled:
        """After :meth:`drain`: what the downloads did since the last settling, and how many
        pieces queued so far are still missing (kept for :meth:`retry`)."""
        missing = self.progress.missing
        self._queued = {k: v for k, v in self._queued.items() if k in missing}
        done = self.progress.files_done
        failed = self.progress.files_failed
        settled = Settled(done - self._counted[0], failed - self._counted[1], len(self._queued))
        self._counted = (done, failed)
        return settled

    async def retry(self) -> int:
        """Queue again the pieces :meth:`settle` found missing; how many."""
        by_guid: dict[str, Interaction] = {}
        for one in self._queued.values():
            known = by_guid.get(one.guid)
            by_guid[one.guid] = (
                one if known is None else attrs.evolve(known, content=known.content + one.content)
            )
        for item in by_guid.values():
            await self._put(item)
        return len(self._queued)

    def _set_aside(self, item: Interaction, key: str) -> None:
        for piece in item.content:
            if piece.content_key == key:
                path = content_path(self.dest, item.start, item.guid, key, piece.content_type)
                for outdated in (path, part_path(path), sidecar_path(path)):
                    with suppress(FileNotFoundError):
                        outdated.unlink()

    async def close(self) -> BulkProgress:
        """Let the queued downloads finish; the counters."""
        if not self._task.done():
            await self._queue.put(None)
        return await self._task

    def cancel(self) -> None:
        """Stop at once (the command is being interrupted)."""
        self._manifest.cancel()
        self._task.cancel()


def missing_pieces(
    rows: Sequence[Interaction], manifest: Manifest, dest: Path, types: Collection[str] | None
) -> list[Interaction]:
    """``rows`` cut down to their wanted pieces (``types``, if given) that the archive under
    ``dest`` lacks: no manifest entry, an entry of another version or path, or no such
    file."""
    lacking = []
    for item in rows:
        pieces = tuple(
            piece
            for piece in item.content
            if (types is None or str(piece.type) in types)
            and not _archived(item, piece, manifest, dest)
        )
        if pieces:
            lacking.append(attrs.evolve(item, content=pieces))
    return lacking


def _archived(item: Interaction, piece: Content, manifest: Manifest, dest: Path) -> bool:
    entry = manifest.get(item.guid, piece.content_key)
    if entry is None:
        return False
    path = content_path(dest, item.start, item.guid, piece.content_key, piece.content_type)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    return entry.describes(piece, path.relative_to(dest).as_posix(), size)
