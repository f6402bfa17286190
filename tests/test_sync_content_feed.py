"""``ContentFeed`` of ``sync --content-dest``: draining between passes, catching up on an
archive that lacks pieces (the pipeline replaced by a stub that records what it is given)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from vccasync.content.bulk import BulkProgress
from vccasync.content.download import part_path, sidecar_path
from vccasync.content.feed import ContentFeed, Settled
from vccasync.content.manifest import MANIFEST_NAME, Manifest, ManifestEntry
from vccasync.content.paths import content_path
from vccasync.models import Content, Interaction
from vccasync.sync import Change

START = datetime(2025, 3, 1, 10, tzinfo=UTC)


class StubPipeline:
    """Takes interactions like ``download_all``; each piece "downloads" once released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.given: list[tuple[str, str]] = []
        self.manifests: list[Manifest | None] = []

    async def download_all(
        self, items: AsyncIterable[Interaction], dest: Path, *, progress: BulkProgress, **more: Any
    ) -> BulkProgress:
        self.manifests.append(more.get("manifest"))
        async for item in items:
            for piece in item.content:
                progress.files_found += 1
                self.given.append((item.guid, piece.content_key))
                await self.release.wait()
                progress.files_done += 1
        return progress


def item(guid: str, *sizes: int) -> Interaction:
    pieces = tuple(
        Content(f"k{n}", "transcript", "application/json", size) for n, size in enumerate(sizes)
    )
    return Interaction(guid, START, content=pieces)


async def test_drain_waits_for_every_piece_queued() -> None:
    stub = StubPipeline()
    feed = ContentFeed(stub, Path("unused"), None, 1)  # type: ignore[arg-type]
    await feed.add(Change("new", item("g1", 5, 6)))
    drained = asyncio.create_task(feed.drain())
    await asyncio.sleep(0.2)
    assert not drained.done() and stub.given == [("g1", "k0")]
    stub.release.set()
    await asyncio.wait_for(drained, 10)
    assert feed.progress.files_done == 2
    await feed.close()


def archive(dest: Path, guid: str, key: str, size: int, *, on_disk: int | None = None) -> None:
    path = content_path(dest, START, guid, key, "application/json")
    if on_disk is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * on_disk)
    manifest = Manifest(dest / MANIFEST_NAME)
    rel = path.relative_to(dest).as_posix()
    manifest.add(ManifestEntry(guid, key, "transcript", "application/json", "", rel, size, ""))
    manifest.close()


async def test_catch_up_queues_only_what_the_archive_lacks(tmp_path: Path) -> None:
    archive(tmp_path, "g1", "k0", 5, on_disk=5)  # complete
    archive(tmp_path, "g1", "k1", 6)  # listed, file gone (set aside)
    archive(tmp_path, "g2", "k0", 4, on_disk=4)  # listed with another size than now
    stub = StubPipeline()
    stub.release.set()
    feed = ContentFeed(stub, tmp_path, None, 1)  # type: ignore[arg-type]
    rows = [item("g1", 5, 6), item("g2", 7), item("g3", 1)]
    assert await feed.catch_up(rows) == 3
    await feed.close()
    assert stub.given == [("g1", "k1"), ("g2", "k0"), ("g3", "k0")]

    typed = ContentFeed(stub, tmp_path, {"callRecording"}, 1)  # type: ignore[arg-type]
    assert await typed.catch_up(rows) == 0
    await typed.close()


async def test_the_downloads_and_the_catch_up_share_one_manifest_index(
    tmp_path: Path, monkeypatch: Any
) -> None:
    archive(tmp_path, "g1", "k0", 5, on_disk=5)
    loaded: list[Manifest] = []
    load = Manifest.load

    def counted(path: Path) -> Manifest:
        loaded.append(load(path))
        return loaded[-1]

    monkeypatch.setattr(Manifest, "load", counted)
    stub = StubPipeline()
    stub.release.set()
    feed = ContentFeed(stub, tmp_path, None, 1)  # type: ignore[arg-type]
    assert await feed.catch_up([item("g1", 5, 6)]) == 1
    await feed.close()
    assert len(loaded) == 1 and stub.manifests == loaded  # one index for the run


class FailingPipeline(StubPipeline):
    """Each piece of ``broken`` fails (as ``download_all`` counts a failure) until mended."""

    def __init__(self, broken: set[tuple[str, str]]) -> None:
        super().__init__()
        self.broken = broken

    async def download_all(
        self, items: AsyncIterable[Interaction], dest: Path, *, progress: BulkProgress, **_: Any
    ) -> BulkProgress:
        async for one in items:
            for piece in one.content:
                key = (one.guid, piece.content_key)
                progress.files_found += 1
                self.given.append(key)
                if key in self.broken:
                    progress.files_failed += 1
                    progress.missing.add(key)
                else:
                    progress.files_done += 1
                    progress.missing.discard(key)
        return progress


async def test_a_failed_piece_is_counted_and_retried_with_the_next_pass() -> None:
    stub = FailingPipeline({("g1", "k1"), ("g2", "k0")})
    feed = ContentFeed(stub, Path("unused"), None, 1)  # type: ignore[arg-type]
    await feed.add(Change("new", item("g1", 5, 6)))
    await feed.add(Change("new", item("g2", 7)))
    await feed.drain()
    assert feed.settle() == Settled(done=1, failed=2, missing=2)
    assert feed.settle().summary() == "0 downloaded, 0 failed; 2 pieces not downloaded"

    stub.broken = {("g2", "k0")}  # one of them mends upstream
    stub.given.clear()
    assert await feed.retry() == 2
    await feed.drain()
    assert sorted(stub.given) == [("g1", "k1"), ("g2", "k0")]  # only the missing ones again
    assert feed.settle() == Settled(done=1, failed=1, missing=1)

    stub.broken = set()
    await feed.retry()
    await feed.drain()
    assert feed.settle() == Settled(done=1, failed=0, missing=0)
    assert await feed.retry() == 0
    await feed.close()


async def test_the_missing_pieces_of_a_removed_interaction_are_not_retried() -> None:
    stub = FailingPipeline({("g1", "k0"), ("g2", "k0")})
    feed = ContentFeed(stub, Path("unused"), None, 1)  # type: ignore[arg-type]
    await feed.add(Change("new", item("g1", 5)))
    await feed.add(Change("new", item("g2", 7)))
    await feed.drain()
    assert feed.settle().missing == 2
    await feed.add(Change("removed", item("g2", 7)))
    assert await feed.retry() == 1
    await feed.close()


async def test_a_changed_piece_is_set_aside_with_its_part(tmp_path: Path) -> None:
    before, after = item("g1", 5, 6), item("g1", 5, 9)
    path = content_path(tmp_path, START, "g1", "k1", "application/json")
    path.parent.mkdir(parents=True)
    outdated = (path, part_path(path), sidecar_path(path))
    for file in outdated:
        file.write_bytes(b"old")
    kept = content_path(tmp_path, START, "g1", "k0", "application/json")
    kept.write_bytes(b"12345")
    stub = StubPipeline()
    stub.release.set()
    feed = ContentFeed(stub, tmp_path, None, 1)  # type: ignore[arg-type]
    await feed.add(Change("changed", after, before))
    await feed.close()
    assert stub.given == [("g1", "k1")]
    assert not any(file.exists() for file in outdated) and kept.exists()


async def test_catch_up_compares_versions(tmp_path: Path) -> None:
    modified = datetime(2025, 3, 1, 11, tzinfo=UTC)
    path = content_path(tmp_path, START, "g1", "k0", "application/json")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"12345")
    manifest = Manifest(tmp_path / MANIFEST_NAME)
    rel = path.relative_to(tmp_path).as_posix()
    entry = ManifestEntry(
        "g1", "k0", "transcript", "application/json", "", rel, 5, "", "2025-03-01T11:00:00Z", 5
    )
    manifest.add(entry)
    manifest.close()
    piece = Content("k0", "transcript", "application/json", 5, modified)
    same = Interaction("g1", START, content=(piece,))
    newer = Interaction("g1", START, content=(attrs.evolve(piece, last_modified=START),))
    stub = StubPipeline()
    stub.release.set()
    feed = ContentFeed(stub, tmp_path, None, 1)  # type: ignore[arg-type]
    assert await feed.catch_up([same]) == 0
    assert await feed.catch_up([newer]) == 1  # same length, another lastModified
    await feed.close()
