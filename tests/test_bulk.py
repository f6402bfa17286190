"""Bulk content download against the fake API: every byte, hostile keys, resume after a kill."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync import BulkProgress, VccClient
from vccasync._converter import structure_interaction
from vccasync._models import Interaction
from vccasync.content._manifest import MANIFEST_NAME, Manifest
from vccasync.fake import Dataset, DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate

from .conftest import client_for
from .content_helpers import expected_files, tree

START = datetime(2025, 2, 3, tzinfo=UTC)
HOSTILE = (
    "..",
    "...",
    ".",
    "Rec",
    "rec",
    "REC",
    "CON",
    "a/b",
    "a%2Fb",
    "..%2F..%2Fescape",
    "x" * 300,
    "x" * 299 + "X",
    " lead and trail ",
    "ü-umlaut",
    "rec.part",
    "rec.bin",
)
SPEC = DatasetSpec(seed=21, start=START, days=6, per_day=8, content_scale=0.01, extra_keys=HOSTILE)
END = START + timedelta(days=6)
FAULTS = FaultConfig(
    rate=0.25,
    kinds=("500", "502-html", "drop", "truncate", "stall", "429-bare", "bad-json"),
    seed=9,
    stall_seconds=0.05,
)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


def expected(dataset: Dataset, types: set[str] | None = None) -> dict[Path, str]:
    """Relative path -> sha256 of every piece of content the search finds (ground truth)."""
    return expected_files(dataset, START, END, types)


def files(root: Path, pattern: str) -> list[Path]:
    return list(root.rglob(pattern))


def partial(root: Path) -> bool:
    return any(p.stat().st_size for p in root.rglob("*.part"))


def manifest_lines(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / MANIFEST_NAME).read_text().splitlines()]


async def run(vcc: VccClient, dest: Path, **kw: Any) -> BulkProgress:
    return await vcc.download_all(vcc.interactions(START, END), dest, **kw)


async def test_every_file_right_through_faults(dataset: Dataset, tmp_path: Path) -> None:
    want = expected(dataset)
    assert len(want) > 60
    async with (
        FakeVccServer(dataset, FakeConfig(faults=FAULTS)) as srv,
        client_for(srv, max_attempts=15, concurrency=3) as vcc,
    ):
        progress = await run(vcc, tmp_path, workers=6)
        assert srv.stats.faults["truncate"] > 0 and vcc.stats.retries > 0
    assert progress.files_failed == 0, progress.failures
    assert progress.files_done == progress.files_found == len(want)
    assert progress.bytes_done == progress.bytes_found
    assert await asyncio.to_thread(tree, tmp_path) == want
    lines = await asyncio.to_thread(manifest_lines, tmp_path)
    assert {(Path(e["path"]), e["sha256"]) for e in lines} == set(want.items())
    assert len(lines) == len(want)
    assert {e["contentKey"] for e in lines} >= set(HOSTILE)
    summary = progress.summary()
    assert f"{len(want)} downloaded" in summary and "0 failed" in summary


async def test_hostile_keys_stay_inside_and_apart(dataset: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    async with FakeVccServer(dataset) as srv, client_for(srv) as vcc:
        progress = await run(vcc, dest, types={"attachment"})
    files = await asyncio.to_thread(tree, dest)
    assert progress.files_failed == 0 and len(files) == progress.files_found
    assert files == expected(dataset, {"attachment"})
    # nothing outside dest, every name distinct even on a case-insensitive file system
    outside = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert outside == ["dest"]
    lowered = [str(p).lower() for p in files]
    assert len(set(lowered)) == len(lowered)
    for path in files:
        assert ".." not in path.parts and not path.name.startswith(".")


async def test_type_filter(dataset: Dataset, tmp_path: Path) -> None:
    types = {"callRecording", "voicemail"}
    async with FakeVccServer(dataset) as srv, client_for(srv) as vcc:
        await run(vcc, tmp_path, types=types)
    assert await asyncio.to_thread(tree, tmp_path) == expected(dataset, types)
    assert {e["type"] for e in await asyncio.to_thread(manifest_lines, tmp_path)} <= types


async def test_a_killed_run_resumes_without_fetching_twice(
    dataset: Dataset, tmp_path: Path
) -> None:
    want = expected(dataset)
    total = sum(c["contentLength"] for it in dataset.expected(START, END) for c in it["content"])
    slow = FakeConfig(content_chunk_latency=0.05)  # a part is still partial when cancelled
    async with FakeVccServer(dataset, slow) as srv, client_for(srv) as vcc:
        progress = BulkProgress()
        task = asyncio.create_task(run(vcc, tmp_path, workers=4, progress=progress))
        while progress.bytes_done < total // 3 or not await asyncio.to_thread(partial, tmp_path):  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        task.cancel()  # killed mid-way: some files complete, some .part, some not started
        with pytest.raises(asyncio.CancelledError):
            await task

    done = await asyncio.to_thread(Manifest.load, tmp_path / MANIFEST_NAME)
    parts = {p: p.stat().st_size for p in files(tmp_path, "*.part")}
    assert done.entries and parts and len(done.entries) < len(want)
    # the kill came between a rename and its manifest line for one file: its version is not
    # known, so it is fetched again
    victim = next(iter(done.entries.values()))
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["path"] != victim.path]
    (tmp_path / MANIFEST_NAME).write_text("\n".join(kept) + '\n{"guid": "cut sh')
    recorded = [e for e in done.entries.values() if e != victim]

    async with FakeVccServer(dataset) as srv, client_for(srv) as vcc:
        progress = await run(vcc, tmp_path, workers=4)
        fetched = {r.path for r in srv.stats.records if "/content/" in r.path}
        sent = srv.stats.content_bytes_sent
    assert progress.files_failed == 0
    assert progress.files_skipped == len(recorded)
    assert progress.files_done == len(want) - len(recorded)
    # recorded files were not asked for again; partial ones were continued, not restarted
    for entry in recorded:
        assert not any(p.endswith(f"/{entry.guid}/content/{entry.content_key}") for p in fetched)
    assert sent == total - sum(e.bytes for e in recorded) - sum(parts.values())
    assert await asyncio.to_thread(tree, tmp_path) == want
    entries = await asyncio.to_thread(Manifest.load, tmp_path / MANIFEST_NAME)
    assert {Path(e.path): e.sha256 for e in entries.entries.values()} == want

    # a third run has nothing to do
    async with FakeVccServer(dataset) as srv, client_for(srv) as vcc:
        again = await run(vcc, tmp_path)
        assert srv.stats.content_requests == 0
    assert again.files_skipped == len(want) and again.files_done == 0


async def test_a_changed_file_is_fetched_again(dataset: Dataset, tmp_path: Path) -> None:
    async with FakeVccServer(dataset) as srv, client_for(srv) as vcc:
        await run(vcc, tmp_path, types={"interactionLog"})
        victim = files(tmp_path, "*.json")[0]
        victim.write_bytes(b"short")
        again = await run(vcc, tmp_path, types={"interactionLog"})
    assert again.files_done == 1 and again.files_skipped == again.files_found - 1
    assert await asyncio.to_thread(tree, tmp_path) == expected(dataset, {"interactionLog"})


async def test_missing_content_is_reported_and_the_rest_goes_on(
    dataset: Dataset, tmp_path: Path
) -> None:
    item = next(dataset.visible())
    gone = structure_interaction({**item, "content": [*item["content"], _piece("no-such")]})

    async def interactions() -> AsyncIterator[Interaction]:
        yield gone

    async with FakeVccServer(dataset) as srv, client_for(srv) as vcc:
        progress = await vcc.download_all(interactions(), tmp_path)
    assert progress.files_failed == 1 and progress.files_done == len(item["content"])
    assert progress.failures[0].content_key == "no-such"
    assert "404" in progress.failures[0].error
    assert not files(tmp_path, "*.part")


async def test_a_search_error_stops_the_pipeline(dataset: Dataset, tmp_path: Path) -> None:
    async def interactions() -> AsyncIterator[Interaction]:
        yield structure_interaction(next(dataset.visible()))
        raise OSError("search broke")

    async with FakeVccServer(dataset) as srv, client_for(srv) as vcc:
        with pytest.raises(OSError, match="search broke"):
            await vcc.download_all(interactions(), tmp_path)


def _piece(key: str) -> dict[str, Any]:
    return {"contentKey": key, "type": "attachment", "contentType": "text/plain"}
