"""Content versions end to end against the fake: a piece changed upstream between two runs is
archived as its new version, byte for byte, never spliced onto the old one's head, and the
manifest says which version it holds."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync import VccClient
from vccasync._models import Interaction
from vccasync.content._download import CHUNK_SIZE, part_path, sidecar_path
from vccasync.content._manifest import MANIFEST_NAME, Manifest
from vccasync.content._paths import content_path
from vccasync.fake import Dataset, DatasetSpec, FakeVccServer, FaultConfig, generate
from vccasync.fake._content import content_sha256

from .conftest import client_for
from .content_helpers import tree

START = datetime(2025, 4, 7, tzinfo=UTC)
END = START + timedelta(days=2)
SPEC = DatasetSpec(seed=17, start=START, days=2, per_day=12, content_scale=0.2)
TYPES = {"callRecording"}
CUT = FaultConfig(rate=1.0, kinds=("truncate",))  # every body stops half-way


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


async def search(vcc: VccClient) -> list[Interaction]:
    return [item async for item in vcc.interactions(START, END)]


async def feed(items: list[Interaction]) -> Any:
    for item in items:
        yield item


def archive_should_be(srv: FakeVccServer, items: list[Interaction]) -> dict[Path, str]:
    """Relative path -> sha256 of the version of each wanted piece the API shows now."""
    out = {}
    for item in items:
        for c in item.content:
            if str(c.type) in TYPES:
                path = content_path(Path(), item.start, item.guid, c.content_key, c.content_type)
                tag = srv.content_version(item.guid, c.content_key)
                out[path] = content_sha256(item.guid, c.content_key, c.content_length or 0, tag)
    return out


def manifest_versions(dest: Path) -> dict[tuple[str, str], tuple[Any, ...]]:
    lines = [json.loads(line) for line in (dest / MANIFEST_NAME).read_text().splitlines()]
    return {
        (e["guid"], e["contentKey"]): (e["lastModified"], e["contentLength"], e["sha256"])
        for e in lines  # the last line of a piece wins
    }


def where(dest: Path, items: list[Interaction]) -> dict[tuple[str, str], Path]:
    """Each wanted piece's file under ``dest``, by (guid, content key)."""
    return {
        (item.guid, c.content_key): content_path(
            dest, item.start, item.guid, c.content_key, c.content_type
        )
        for item in items
        for c in item.content
        if str(c.type) in TYPES
    }


def left_behind(files: dict[tuple[str, str], Path]) -> dict[tuple[str, str], int]:
    """The size of each piece's ``.part`` (0: none), each part with its sidecar."""
    sizes = {}
    for key, path in files.items():
        part = part_path(path)
        sizes[key] = part.stat().st_size if part.exists() else 0
        assert sidecar_path(path).exists() == part.exists()
    return sizes


def leftovers(dest: Path) -> list[Path]:
    return list(dest.rglob("*.part*"))


async def test_a_piece_changed_upstream_is_archived_as_its_new_version(
    dataset: Dataset, tmp_path: Path
) -> None:
    async with FakeVccServer(dataset) as srv, client_for(srv, max_attempts=1) as vcc:
        items = await search(vcc)
        files = where(tmp_path, items)
        sizes = {
            (item.guid, c.content_key): c.content_length or 0
            for item in items
            for c in item.content
            if (item.guid, c.content_key) in files
        }
        big = [key for key, n in sizes.items() if n > 3 * CHUNK_SIZE]  # half is > a chunk
        assert len(big) >= 4
        # version 1 of every piece fails half-way: .part and sidecar left behind
        srv.inject_faults(CUT)
        first = await vcc.download_all(feed(items), tmp_path, types=TYPES)
        assert first.files_done == 0 and first.files_failed == len(files)
        srv.inject_faults(FaultConfig())
        parts = await asyncio.to_thread(left_behind, files)
        assert all(0 < parts[key] < sizes[key] for key in big), [(parts[k], sizes[k]) for k in big]

        changed = {
            big[0]: srv.reprocess(*big[0]),  # the same length, other bytes
            big[1]: srv.reprocess(*big[1], length=sizes[big[1]] + 777),
            big[2]: srv.reprocess(*big[2], length=parts[big[2]] // 2),  # shorter than the part
        }
        srv.reset_stats()
        items = await search(vcc)
        second = await vcc.download_all(feed(items), tmp_path, types=TYPES)
        assert second.files_failed == 0 and second.files_done == len(files)
        assert await asyncio.to_thread(tree, tmp_path) == archive_should_be(srv, items)
        # the unchanged pieces were continued, the changed ones fetched whole
        whole = sum(r["contentLength"] for r in changed.values())
        rest = sum(sizes[key] - parts[key] for key in files if key not in changed)
        assert srv.stats.content_bytes_sent == whole + rest
        versions = manifest_versions(tmp_path)
        for key, revision in changed.items():
            assert versions[key][:2] == (revision["lastModified"], revision["contentLength"])
        assert not await asyncio.to_thread(leftovers, tmp_path)

        # a complete archived file whose piece is reprocessed again is replaced as well
        again = srv.reprocess(*big[0])
        items = await search(vcc)
        third = await vcc.download_all(feed(items), tmp_path, types=TYPES)
        assert third.files_done == 1 and third.files_skipped == len(files) - 1
        assert await asyncio.to_thread(tree, tmp_path) == archive_should_be(srv, items)
        latest = manifest_versions(tmp_path)[big[0]]
        assert latest[:2] == (again["lastModified"], again["contentLength"])


async def test_a_rerun_downloads_and_stamps_lines_without_a_version(
    dataset: Dataset, tmp_path: Path
) -> None:
    """What the purge plan advises for "archived version unknown": rerunning content over the
    range downloads those files again and records their version."""
    async with FakeVccServer(dataset) as srv, client_for(srv) as vcc:
        items = await search(vcc)
        await vcc.download_all(feed(items), tmp_path, types=TYPES)
        manifest = tmp_path / MANIFEST_NAME
        lines = [json.loads(line) for line in manifest.read_text().splitlines()]
        version = ("lastModified", "contentLength", "etag", "httpLastModified")
        bare = [{k: v for k, v in e.items() if k not in version} for e in lines]
        manifest.write_text("".join(json.dumps(e) + "\n" for e in bare))  # as written long ago
        sent = srv.stats.content_bytes_sent
        again = await vcc.download_all(feed(items), tmp_path, types=TYPES)
        assert again.files_done == len(lines) and srv.stats.content_bytes_sent == 2 * sent
    stamped = Manifest.load(tmp_path / MANIFEST_NAME).entries
    for item in items:
        for c in item.content:
            if str(c.type) in TYPES:
                entry = stamped[item.guid, c.content_key]
                assert entry.content_length == c.content_length
                assert entry.archived_modified == c.last_modified is not None
