"""A search stopped right after a page that split its window, before any page out of order,
resumes exactly from its checkpoint when the server does not page by ``start``: the split
window's repair survives in the checkpoint (JSONL, SQLite, PostgreSQL, a sync pass's state)."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from vccasync import VccClient
from vccasync._query import NO_FILTERS, make_query
from vccasync._windows import Page
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.stores._output import open_sink
from vccasync.stores._sqlite_changes import SqliteSyncState
from vccasync.sync import SyncEngine

from .cli_helpers import read_output
from .conftest import client_for
from .sync_store_helpers import read_store

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=2)
LIMIT = 100


@pytest.fixture(scope="module")
def data() -> Any:
    return generate(DatasetSpec(seed=7, start=START, days=2, per_day=1500))


@pytest.fixture(scope="module")
def want(data: Any) -> Counter[str]:
    return Counter(i["guid"] for i in data.expected(START, END))


@pytest.fixture
async def vcc(data: Any) -> AsyncIterator[VccClient]:
    # pages sorted by start within a page, by hour across pages; tokens bound to their query
    config = FakeConfig(order="hour", bind_tokens=True)
    async with FakeVccServer(data, config) as fake, client_for(fake, concurrency=6) as client:
        yield client


class StopAfterSplits:
    """Says when to stop: after the ``splits``-th page that split its window, asserting that
    no page out of order came first (no repair spawned yet)."""

    def __init__(self, splits: int) -> None:
        self.left = splits

    def __call__(self, page: Page) -> bool:
        assert not any(w.after for w in page.spawned), "a page broke the order before"
        if page.spawned and page.last:
            self.left -= 1
        return self.left == 0


@pytest.fixture(params=[".jsonl", ".sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A backfill's output: a JSONL file, an SQLite file or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        dsn: str = request.getfixturevalue("pg_dsn")
        return dsn
    return str(tmp_path / f"out{request.param}")


async def stored_guids(target: str) -> Counter[str]:
    if not target.startswith("postgresql"):
        return Counter(row["guid"] for row in read_output(Path(target)))
    conn = await asyncpg.connect(target)
    try:
        return Counter(r["guid"] for r in await conn.fetch("SELECT guid FROM interactions"))
    finally:
        await conn.close()


@pytest.mark.parametrize("splits", [1, 2])
async def test_a_backfill_resumed_after_a_split_is_exact(
    vcc: VccClient, want: Counter[str], target: str, splits: int
) -> None:
    query = make_query(START, END, limit=LIMIT)
    stop = StopAfterSplits(splits)
    async with await open_sink(target, query) as sink:
        async for page in vcc.search(query, ordered=False, plan=sink.checkpoint.plan()).pages():
            await sink.write(page)
            if stop(page):
                break
    assert stop.left == 0
    async with await open_sink(target, query) as sink:  # a new run
        stored = copy.deepcopy(sink.checkpoint.to_json())  # as the interrupted run left it
        async for page in vcc.search(query, ordered=False, plan=sink.checkpoint.plan()).pages():
            await sink.write(page)
        assert sink.checkpoint.done
    assert await stored_guids(target) == want
    assert len(stored["repairs"]) >= splits and not stored["order_broken"]


@pytest.mark.parametrize("splits", [1, 2])
async def test_a_sync_pass_resumed_after_a_split_marks_nothing_removed(
    vcc: VccClient, want: Counter[str], tmp_path: Path, splits: int
) -> None:
    """Pass 1 completes; pass 2 stops after its split page, then a new run resumes it: every
    interaction is still there and none was reported or marked removed."""
    target = tmp_path / "store.sqlite"
    options: dict[str, Any] = {"since": START, "lookback": "3d", "limit": LIMIT, "now": lambda: END}
    async with await SqliteSyncState.open(target, NO_FILTERS, LIMIT) as state:
        first = SyncEngine(vcc, state, **options)
        assert {c.kind async for c in first.run_pass()} == {"new"}
    stop, seen = StopAfterSplits(splits), []

    class Watching(SqliteSyncState):
        async def record(self, page: Page, observed: Any) -> None:
            await super().record(page, observed)
            seen.append(stop(page))

    async with await Watching.open(target, NO_FILTERS, LIMIT) as state:
        stopped = SyncEngine(vcc, state, should_stop=lambda: bool(seen and seen[-1]), **options)
        assert [c async for c in stopped.run_pass()] == []
        assert stopped.stopped and stop.left == 0
    async with await SqliteSyncState.open(target, NO_FILTERS, LIMIT) as state:
        resumed = SyncEngine(vcc, state, **options)
        changes = [c async for c in resumed.run_pass()]
        assert resumed.last is not None and not resumed.stopped
    assert [c.kind for c in changes if c.kind == "removed"] == []
    rows = read_store(str(target))
    assert set(rows) == set(want) and all(row.removed_at is None for row in rows.values())
