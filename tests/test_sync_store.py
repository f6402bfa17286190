# ruff: noqa: F811 (test arguments are the fixtures imported from sync_fixtures)
"""Sync into SQLite and PostgreSQL stores against the fake's timeline (manual clock): the store
ends equal to the API's current view, removals marked, unchanged rows untouched."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from vccasync import VccClient
from vccasync._query import make_filters, make_query
from vccasync.fake._dataset import Dataset
from vccasync.fake._timeline import FakeClock, Timeline
from vccasync.stores._base import write_search
from vccasync.stores._output import open_sink, open_state
from vccasync.sync import SyncEngine
from vccasync.sync._scope import in_scope, scope_key

from .conftest import api_shape
from .sync_fixtures import (  # noqa: F401 (the fixtures are used by name)
    SINCE,
    T0,
    clock,
    dataset,
    fake,
    timeline,
    vcc,
)
from .sync_store_helpers import Row, read_store

WHOLE = timedelta(days=5)  # a lookback reaching back to SINCE: every pass judges everything


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "sync.sqlite")
    return str(request.getfixturevalue("pg_dsn"))


async def one_pass(vcc: VccClient, target: str, clock: FakeClock, **options: Any) -> Any:
    limit = options.pop("limit", 1000)
    filters = make_filters(**options)
    engine = SyncEngine(
        vcc, filters=filters, since=SINCE, lookback=WHOLE, now=clock.now, limit=limit
    )
    async with await open_state(target, engine.filters, engine.limit) as state:
        engine.state = state
        changes = [change async for change in engine.changes(once=True)]
    return engine.last, changes


def api_view(timeline: Timeline, dataset: Dataset, end: Any, **filters: Any) -> dict[str, Any]:
    return {i["guid"]: api_shape(i) for i in timeline.expected(dataset, SINCE, end, **filters)}


def present(store: dict[str, Row]) -> dict[str, dict[str, Any]]:
    return {guid: row.data for guid, row in store.items() if row.removed_at is None}


def assert_exact(store: dict[str, Row], view: dict[str, Any]) -> None:
    assert present(store) == view
    for guid, item in view.items():
        assert store[guid].content == tuple(sorted(p["contentKey"] for p in item["content"]))


async def test_passes_keep_the_store_equal_to_the_api(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock, target: str
) -> None:
    first, _ = await one_pass(vcc, target, clock)
    view1 = api_view(timeline, dataset, T0)
    store1 = await asyncio.to_thread(read_store, target)
    assert first.new == len(view1) and first.complete_up_to == T0
    assert_exact(store1, view1)

    clock.advance(timedelta(hours=3))  # content revealed late, pieces updated, removals
    second, changes = await one_pass(vcc, target, clock)
    view2 = api_view(timeline, dataset, clock.now())
    store2 = await asyncio.to_thread(read_store, target)
    assert_exact(store2, view2)
    gone = set(view1) - set(view2)
    assert gone and {g for g, row in store2.items() if row.removed_at is not None} == gone
    changed = {g for g in set(view1) & set(view2) if view1[g] != view2[g]}
    assert changed and second.changed == len(changed) and second.removed == len(gone)
    assert second.new == len(set(view2) - set(view1)) > 0
    for guid in set(view1) & set(view2) - changed:  # unchanged rows were not rewritten
        assert store2[guid].updated_at == store1[guid].updated_at
    assert {c.interaction.guid for c in changes if c.kind == "changed"} == changed

    third, changes = await one_pass(vcc, target, clock)  # nothing moved: nothing written
    assert changes == [] and third.unchanged == len(view2)
    assert await asyncio.to_thread(read_store, target) == store2


async def test_a_store_is_complete_only_for_the_filters_it_was_synced_with(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock, target: str
) -> None:
    await one_pass(vcc, target, clock, direction="inbound")
    inbound = api_view(timeline, dataset, T0, direction="inbound")
    assert present(await asyncio.to_thread(read_store, target)) == inbound
    engine = SyncEngine(vcc, now=clock.now)  # no since: the unfiltered sync never ran
    async with await open_state(target, engine.filters, engine.limit) as state:
        assert await state.coverage() is None
    clock.advance(timedelta(hours=3))
    await one_pass(vcc, target, clock, direction="inbound")
    assert_exact(
        await asyncio.to_thread(read_store, target),
        api_view(timeline, dataset, clock.now(), direction="inbound"),
    )


async def test_a_pass_cut_short_resumes_and_only_a_complete_pass_removes(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock, target: str
) -> None:
    await one_pass(vcc, target, clock)
    clock.advance(timedelta(hours=3))
    engine = SyncEngine(vcc, since=SINCE, lookback=WHOLE, now=clock.now, limit=50)
    async with await open_state(target, engine.filters, engine.limit) as state:
        engine.state = state
        pages = 0
        real_record = state.record

        async def record_then_stop(page: Any, observed: Any) -> None:
            nonlocal pages
            await real_record(page, observed)
            pages += 1
            if pages == 4:
                raise asyncio.CancelledError  # as if killed after the fourth page committed

        state.record = record_then_stop  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            async for _ in engine.changes(once=True):
                pass
    halfway = await asyncio.to_thread(read_store, target)
    assert all(row.removed_at is None for row in halfway.values())
    clock.advance(timedelta(hours=1))
    again, _ = await one_pass(vcc, target, clock, limit=50)
    assert again.span.end == T0 + timedelta(hours=3)  # the pass under way, resumed
    assert again.new + again.changed + again.unchanged < len(halfway)  # from its checkpoint
    await one_pass(vcc, target, clock, limit=50)
    assert_exact(
        await asyncio.to_thread(read_store, target), api_view(timeline, dataset, clock.now())
    )


async def test_a_comeback_clears_removed_at(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock, tmp_path: Path
) -> None:
    target = str(tmp_path / "sync.sqlite")
    await one_pass(vcc, target, clock)
    clock.advance(timedelta(hours=3))
    await one_pass(vcc, target, clock)
    store = await asyncio.to_thread(read_store, target)
    gone = sorted(g for g, row in store.items() if row.removed_at is not None)
    assert gone
    timeline.spec = attrs.evolve(timeline.spec, removal_rate=0.0)  # the API shows them again
    _, changes = await one_pass(vcc, target, clock)
    back = {c.interaction.guid for c in changes if c.kind == "new"}
    assert set(gone) <= back
    after = await asyncio.to_thread(read_store, target)
    assert all(after[g].removed_at is None for g in gone)


async def test_a_backfilled_store_of_an_older_version_is_migrated(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock, tmp_path: Path
) -> None:
    target = tmp_path / "old.sqlite"
    with sqlite3.connect(target) as db:  # the tables as the first release wrote them
        db.executescript(
            "CREATE TABLE interactions (guid TEXT PRIMARY KEY, start TEXT NOT NULL,"
            " connect_from TEXT, connect_to TEXT, direction TEXT, handling_agents TEXT NOT NULL,"
            " json TEXT NOT NULL);"
            "CREATE TABLE vccasync_checkpoint (id INTEGER PRIMARY KEY, state TEXT NOT NULL);"
        )
    await one_pass(vcc, str(target), clock)
    assert_exact(read_store(str(target)), api_view(timeline, dataset, T0))


async def test_a_backfilled_store_is_taken_over_without_rewriting_it(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock, target: str
) -> None:
    query = make_query(SINCE, T0)
    async with await open_sink(target, query) as sink:
        await write_search(sink, vcc.search(query))
    before = await asyncio.to_thread(read_store, target)
    result, changes = await one_pass(vcc, target, clock)
    assert changes == [] and result.unchanged == len(before) > 300  # fingerprints from json
    assert await asyncio.to_thread(read_store, target) == before
    clock.advance(timedelta(hours=3))
    await one_pass(vcc, target, clock)
    assert_exact(
        await asyncio.to_thread(read_store, target), api_view(timeline, dataset, clock.now())
    )


def test_in_scope_applies_the_filters_as_the_search_does() -> None:
    item = json.dumps(
        {"direction": "Inbound", "connectFrom": "01473 555", "connectTo": "0800",
         "handlingAgents": [{"id": "42"}]}
    )  # fmt: skip
    assert in_scope(item, scope_key(make_filters()))
    assert in_scope(item, scope_key(make_filters(direction="inbound", connect_from="01473")))
    assert in_scope(item, scope_key(make_filters(connect_to="08", handling_agent_id="42")))
    assert not in_scope(item, scope_key(make_filters(direction="outbound")))
    assert not in_scope(item, scope_key(make_filters(connect_from="0800")))
    assert not in_scope(item, scope_key(make_filters(handling_agent_id="4")))
    # the key stores keep a sync's coverage under (existing stores depend on its form)
    assert scope_key(make_filters(direction="inbound", connect_from="01")) == (
        '{"connect_from":"01","direction":"inbound"}'
    )
