# ruff: noqa: F811 (test arguments are the fixtures imported from sync_fixtures)
"""The durable content queue of a sync store (SQLite and PostgreSQL): the pieces new and changed
rows bring are queued with their rows, superseded by a new version, dropped when their
interaction is removed, retried with backoff after a failure; an older store gains the queue
when opened."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync import VccClient
from vccasync._errors import InvalidRequestError
from vccasync.fake._dataset import Dataset
from vccasync.fake._timeline import FakeClock, Timeline
from vccasync.stores._contract import ALL_TYPES, StoreOptions, SyncStore
from vccasync.stores._registry import open_store
from vccasync.sync import SyncEngine
from vccasync.sync._diff import Span
from vccasync.sync._queue import Settlement, backoff, piece_version

from .sync_fixtures import (  # noqa: F401 (the fixtures are used by name)
    SINCE,
    T0,
    clock,
    dataset,
    fake,
    timeline,
    vcc,
)

WHOLE = timedelta(days=5)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "sync.sqlite")
    return str(request.getfixturevalue("pg_dsn"))


def pieces(timeline: Timeline, dataset: Dataset, end: Any) -> dict[tuple[str, str], str]:
    """Every piece the API shows up to ``end``, with its version as a queue row names it."""
    from vccasync._converter import structure_interaction

    out = {}
    for item in timeline.expected(dataset, SINCE, end):
        interaction = structure_interaction(item)
        for piece in interaction.content:
            out[(interaction.guid, piece.content_key)] = piece_version(piece)
    return out


async def one_pass(vcc: VccClient, store: SyncStore, clock: FakeClock) -> None:
    engine = SyncEngine(vcc, store, since=SINCE, lookback=WHOLE, now=clock.now)
    async for _ in engine.changes(once=True):
        pass


async def queued(store: SyncStore, clock: FakeClock) -> dict[tuple[str, str], str]:
    return {q.key: q.version for q in await store.due(clock.now(), 100_000)}


async def test_pieces_are_queued_with_their_rows_superseded_and_dropped_when_removed(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock, target: str
) -> None:
    options = StoreOptions(content=ALL_TYPES)
    async with await open_store(target, options) as store:
        await one_pass(vcc, store, clock)
        first = pieces(timeline, dataset, T0)
        assert first and await queued(store, clock) == first
        status = await store.queue_status()
        assert (status.depth, status.failed) == (len(first), 0)

        done = sorted(first)[: len(first) // 2]  # half of them downloaded
        await store.settle([Settlement(g, k, first[(g, k)]) for g, k in done], clock.now())
        clock.advance(timedelta(hours=3))  # pieces revealed late, updated, interactions removed
        await one_pass(vcc, store, clock)
        second = pieces(timeline, dataset, clock.now())
        now = await queued(store, clock)
        # what is still owed: every piece not downloaded at the version the API shows now
        owed = {k: v for k, v in second.items() if k not in done or first.get(k) != v}
        assert now == owed
        gone = {k for k in first if k[0] not in {g for g, _ in second}} - set(done)
        assert gone and store.dropped.gone >= len(gone)
        assert store.dropped.superseded > 0  # pieces queued at a version since replaced


async def test_a_failed_piece_stays_queued_with_backoff_until_downloaded(
    vcc: VccClient, clock: FakeClock, target: str
) -> None:
    async with await open_store(target, StoreOptions(content=ALL_TYPES)) as store:
        await one_pass(vcc, store, clock)
        [first, *_] = await store.due(clock.now(), 1)
        guid, key = first.key
        failed = Settlement(guid, key, first.version, error="HTTP 500")
        await store.settle([failed], clock.now())
        assert first.key not in await queued(store, clock)  # not due before its next try
        status = await store.queue_status()
        assert status.failed == 1 and status.next_try == clock.now() + backoff(1)
        clock.advance(backoff(1))
        [again] = [q for q in await store.due(clock.now(), 100_000) if q.key == first.key]
        assert again.attempts == 1
        await store.settle([failed], clock.now())
        clock.advance(backoff(1))
        assert first.key not in await queued(store, clock)  # the second backoff is longer
        clock.advance(backoff(2) - backoff(1))
        assert first.key in await queued(store, clock)
        await store.settle([Settlement(guid, key, first.version)], clock.now())
        assert first.key not in await queued(store, clock)
        assert (await store.queue_status()).failed == 0
    async with await open_store(target, StoreOptions(content=ALL_TYPES)) as store:
        assert first.key not in await queued(store, clock)  # kept across runs


async def test_a_piece_gone_upstream_leaves_the_queue_counted(
    vcc: VccClient, clock: FakeClock, target: str
) -> None:
    async with await open_store(target, StoreOptions(content=ALL_TYPES)) as store:
        await one_pass(vcc, store, clock)
        [first] = await store.due(clock.now(), 1)
        guid, key = first.key
        depth = (await store.queue_status()).depth
        await store.settle([Settlement(guid, key, first.version, "404", gone=True)], clock.now())
        assert (await store.queue_status()).depth == depth - 1
        assert store.dropped.gone == 1


async def test_a_read_only_store_tells_its_coverage_and_queue_and_refuses_writes(
    vcc: VccClient, clock: FakeClock, target: str
) -> None:
    async with await open_store(target, StoreOptions(content=ALL_TYPES)) as store:
        await one_pass(vcc, store, clock)
        depth = (await store.queue_status()).depth
        # a writer holds the lease: --status opens beside it
        async with await open_store(target, StoreOptions(read_only=True)) as status:
            assert await status.status() == [("{}", Span(SINCE, T0))]
            assert (await status.queue_status()).depth == depth > 0
            with pytest.raises(InvalidRequestError, match="read-only"):
                await status.settle([], clock.now())


OLD_SQLITE_SYNC = """
CREATE TABLE vccasync_sync (scope TEXT PRIMARY KEY, covered_from TEXT, covered_to TEXT,
    pass_from TEXT, pass_to TEXT, checkpoint TEXT);
CREATE TABLE vccasync_sync_seen (scope TEXT NOT NULL, guid TEXT NOT NULL,
    PRIMARY KEY (scope, guid)) WITHOUT ROWID;
"""


async def test_an_older_sqlite_store_gains_the_queue_and_the_lease(
    vcc: VccClient, clock: FakeClock, tmp_path: Path
) -> None:
    """A store written before the queue (no lease, no queue, no pass_began) keeps working."""
    path = tmp_path / "old.sqlite"
    async with await open_store(str(path), StoreOptions()) as store:
        await one_pass(vcc, store, clock)
    with sqlite3.connect(path) as db:  # back to the tables of the version before the queue
        db.executescript(
            "DROP TABLE vccasync_sync; DROP TABLE vccasync_sync_seen; DROP TABLE vccasync_lease;"
            " DROP TABLE vccasync_content_queue;" + OLD_SQLITE_SYNC
        )
        db.execute("INSERT INTO vccasync_sync (scope) VALUES ('{}')")
    async with await open_store(str(path), StoreOptions(content=ALL_TYPES)) as store:
        assert (await store.queue_status()).depth == 0
        clock.advance(timedelta(hours=1))
        await one_pass(vcc, store, clock)
        assert await store.coverage() is not None
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(vccasync_sync)")}
    assert "pass_began" in columns


async def test_an_older_postgres_store_gains_the_queue_and_the_lease(
    vcc: VccClient, clock: FakeClock, pg_dsn: str
) -> None:
    import asyncpg

    async with await open_store(pg_dsn, StoreOptions()) as store:
        await one_pass(vcc, store, clock)
    conn = await asyncpg.connect(pg_dsn)
    try:  # back to the tables of the version before the queue
        await conn.execute(
            "ALTER TABLE vccasync_sync DROP COLUMN pass_began; DROP TABLE vccasync_lease;"
            " DROP TABLE vccasync_content_queue"
        )
    finally:
        await conn.close()
    async with await open_store(pg_dsn, StoreOptions(content=ALL_TYPES)) as store:
        assert (await store.queue_status()).depth == 0
        clock.advance(timedelta(hours=1))
        await one_pass(vcc, store, clock)
        assert (await store.coverage()) == Span(SINCE, clock.now())


def test_plan_queue_supersedes_and_drops_pieces_by_version() -> None:
    from datetime import UTC, datetime

    from vccasync._models import Content, Interaction
    from vccasync.sync._queue import plan_queue

    old = Content("k0", "transcript", "application/json", 5)
    new = Content("k0", "transcript", "application/json", 9)
    kept = Content("k1", "callRecording", "audio/wav", 7)
    item = Interaction("g", datetime(2026, 1, 1, tzinfo=UTC), content=(new, kept))
    existing = {("g", "k0"): piece_version(old), ("g", "k9"): "dropped", ("h", "k0"): "other"}
    plan = plan_queue(existing, [(item, (new,))], None)
    assert plan.upserts == [("g", "k0", "transcript", piece_version(new))]
    assert plan.deletes == [("g", "k9")]  # the new version has no k9; h is not written
    assert (plan.superseded, plan.gone) == (1, 1)
    assert backoff(0) == timedelta(0) and backoff(3) == 4 * backoff(1)
    assert backoff(50) == timedelta(hours=1)


async def test_a_pass_under_way_in_an_older_store_resumes(
    vcc: VccClient, clock: FakeClock, target: str
) -> None:
    """A pass an older version left under way (no pass_began) resumes and completes."""
    import asyncio

    import asyncpg

    engine = SyncEngine(vcc, since=SINCE, lookback=WHOLE, now=clock.now, limit=50)
    async with await open_store(target, StoreOptions(limit=50)) as store:
        engine.state = store
        pages = 0
        real_record = store.record

        async def record_then_stop(page: Any, observed: Any) -> None:
            nonlocal pages
            await real_record(page, observed)
            pages += 1
            if pages == 2:
                raise asyncio.CancelledError  # as if killed after the second page

        store.record = record_then_stop  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            async for _ in engine.changes(once=True):
                pass
    forget = "UPDATE vccasync_sync SET pass_began = NULL"
    if target.startswith("postgresql://"):
        conn = await asyncpg.connect(target)
        await conn.execute(forget)
        await conn.close()
    else:
        with sqlite3.connect(target) as db:
            db.execute(forget)
    async with await open_store(target, StoreOptions(limit=50)) as store:
        engine.state = store
        async for _ in engine.changes(once=True):
            pass
        assert engine.last is not None and engine.last.span == Span(SINCE, T0)
        assert engine.last.removed == 0
