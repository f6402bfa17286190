"""``ContentFeed`` of ``sync --content-dest``: it drains a store's queue on its own, settles each
outcome back, starts nothing new once stopped, and sets an outdated file aside before its new
version downloads (the pipeline replaced by a stub, the queue by one in memory)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vccasync._errors import APIStatusError, NotFoundError
from vccasync._models import Content, Interaction
from vccasync.content._bulk import BulkProgress
from vccasync.content._download import part_path, sidecar_path
from vccasync.content._feed import ContentFeed
from vccasync.content._manifest import MANIFEST_NAME, Manifest, ManifestEntry
from vccasync.content._paths import content_path
from vccasync.sync._queue import QueuedPiece, QueueStatus, Settlement, backoff, piece_version

START = datetime(2025, 3, 1, 10, tzinfo=UTC)


class StubPipeline:
    """Takes interactions like ``download_all``; each piece "downloads" once released, or
    fails with the error ``broken`` names for it."""

    def __init__(self, broken: dict[tuple[str, str], Exception] | None = None) -> None:
        self.release = asyncio.Event()
        self.given: list[tuple[str, str]] = []
        self.broken = broken or {}

    async def download_all(
        self,
        interactions: AsyncIterable[Interaction],
        dest: Path,
        *,
        progress: BulkProgress,
        **more: Any,
    ) -> BulkProgress:
        on_piece = more["on_piece"]
        async for item in interactions:
            for piece in item.content:
                key = (item.guid, piece.content_key)
                self.given.append(key)
                await self.release.wait()
                error = self.broken.get(key)
                progress.files_done += error is None
                progress.files_failed += error is not None
                on_piece(item.guid, piece.content_key, error)
        return progress


class MemoryQueue:
    """A store's queue in memory, with the store's rules (backoff, versions)."""

    def __init__(self, items: Sequence[Interaction]) -> None:
        self.rows: dict[tuple[str, str], tuple[Interaction, str, int, datetime | None]] = {}
        for item in items:
            for piece in item.content:
                one = Interaction(item.guid, item.start, content=(piece,))
                self.rows[(item.guid, piece.content_key)] = (one, piece_version(piece), 0, None)
        self.gone = 0

    async def due(
        self, now: datetime, limit: int, skip: Collection[tuple[str, str]] = ()
    ) -> list[QueuedPiece]:
        out = [
            QueuedPiece(one, version, attempts)
            for key, (one, version, attempts, at) in self.rows.items()
            if key not in skip and (at is None or at <= now)
        ]
        return out[:limit]

    async def settle(self, outcomes: Sequence[Settlement], now: datetime) -> None:
        for done in outcomes:
            key = (done.guid, done.content_key)
            if done.error is None or done.gone:
                self.gone += done.gone
                self.rows.pop(key, None)
            else:
                one, version, attempts, _ = self.rows[key]
                self.rows[key] = (one, version, attempts + 1, now + backoff(attempts + 1))

    async def queue_status(self) -> QueueStatus:
        failed = [at for (_, _, attempts, at) in self.rows.values() if attempts]
        return QueueStatus(len(self.rows), len(failed), None, min(failed, default=None))

    async def wait_queued(self, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.01))


def item(guid: str, *sizes: int) -> Interaction:
    pieces = tuple(
        Content(f"k{n}", "transcript", "application/json", size) for n, size in enumerate(sizes)
    )
    return Interaction(guid, START, content=pieces)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


async def test_outcomes_are_settled_into_the_queue_and_failures_wait_their_backoff(
    tmp_path: Path,
) -> None:
    broken: dict[tuple[str, str], Exception] = {
        ("g1", "k1"): APIStatusError("HTTP 500", status=500),
        ("g2", "k0"): NotFoundError("HTTP 404", status=404),
    }
    stub, queue, clock = (
        StubPipeline(broken),
        MemoryQueue([item("g1", 5, 6), item("g2", 7)]),
        Clock(),
    )
    stub.release.set()
    feed = ContentFeed(stub.download_all, queue, tmp_path, 2, now=clock)
    feed.start()
    await asyncio.wait_for(feed.finish(), 10)
    assert sorted(stub.given) == [("g1", "k0"), ("g1", "k1"), ("g2", "k0")]
    assert list(queue.rows) == [("g1", "k1")] and queue.gone == 1  # the 404 left, counted
    assert feed.status.failed == 1 and feed.report().failed == 2

    del stub.broken[("g1", "k1")]
    again = ContentFeed(stub.download_all, queue, tmp_path, 2, now=clock)
    again.start()
    await asyncio.wait_for(again.finish(), 10)
    assert len(stub.given) == 3  # not due yet: not tried again
    clock.now += backoff(1)
    third = ContentFeed(stub.download_all, queue, tmp_path, 2, now=clock)
    third.start()
    await asyncio.wait_for(third.finish(), 10)
    assert stub.given[3:] == [("g1", "k1")] and not queue.rows


async def test_once_stopped_no_new_download_starts_and_the_queue_keeps_the_rest(
    tmp_path: Path,
) -> None:
    stub, queue = StubPipeline(), MemoryQueue([item(f"g{n}", 5) for n in range(10)])
    feed = ContentFeed(stub.download_all, queue, tmp_path, 1)
    feed.start()
    while not stub.given:  # noqa: ASYNC110 - the stub signals nothing
        await asyncio.sleep(0.01)
    feed.stop()
    stub.release.set()  # the one in flight ends
    await asyncio.wait_for(feed.wait(), 10)
    assert stub.given == [("g0", "k0")]
    assert len(queue.rows) == 9


async def test_a_queued_piece_of_another_version_sets_the_archived_file_aside(
    tmp_path: Path,
) -> None:
    modified = datetime(2025, 3, 1, 11, tzinfo=UTC)
    old = Content("k1", "transcript", "application/json", 5, modified)
    new = Content("k1", "transcript", "application/json", 9, modified + timedelta(hours=1))
    path = content_path(tmp_path, START, "g1", "k1", "application/json")
    path.parent.mkdir(parents=True)
    outdated = (path, part_path(path), sidecar_path(path))
    for file in outdated:
        file.write_bytes(b"old")
    manifest = Manifest(tmp_path / MANIFEST_NAME)
    rel = path.relative_to(tmp_path).as_posix()
    manifest.add(
        ManifestEntry(
            "g1", "k1", "transcript", "application/json", "", rel, 5, "",
            "2025-03-01T11:00:00Z", old.content_length,
        )
    )  # fmt: skip
    manifest.close()
    stub, queue = StubPipeline(), MemoryQueue([Interaction("g1", START, content=(new,))])
    stub.release.set()
    feed = ContentFeed(stub.download_all, queue, tmp_path, 1)
    feed.start()
    await asyncio.wait_for(feed.finish(), 10)
    assert stub.given == [("g1", "k1")]
    assert not any(file.exists() for file in outdated)
