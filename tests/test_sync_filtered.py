"""A filtered sync and rows that leave its filters: an interaction that turned outbound under an
inbound sync is not marked removed (the store keeps its current version), while one deleted
upstream is. The fake's data is changed in place between passes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync import VccClient
from vccasync._query import make_filters
from vccasync.fake import FakeVccServer, generate
from vccasync.fake._columns import FLAG_OUTBOUND
from vccasync.fake._dataset import Dataset
from vccasync.stores._output import open_state
from vccasync.sync import Change, MemoryState, SyncEngine, SyncState

from .conftest import client_for
from .sync_fixtures import SINCE, SPEC, T0
from .sync_store_helpers import read_store

WHOLE = timedelta(days=5)  # every pass judges the whole data set


@pytest.fixture
def dataset() -> Dataset:
    return generate(SPEC)  # each test changes its own copy


@pytest.fixture
async def fake(dataset: Dataset) -> AsyncIterator[FakeVccServer]:
    async with FakeVccServer(dataset) as server:
        yield server


@pytest.fixture
async def vcc(fake: FakeVccServer) -> AsyncIterator[VccClient]:
    async with client_for(fake, concurrency=4) as client:
        yield client


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "sync.sqlite")
    return str(request.getfixturevalue("pg_dsn"))


async def one_pass(engine: SyncEngine, state: SyncState) -> list[Change]:
    engine.state = state
    return [change async for change in engine.changes(once=True)]


def inbound_positions(dataset: Dataset) -> list[int]:
    """The inbound interactions up to T0 (what the filtered sync sees)."""
    end = T0.timestamp() * 1000
    return [
        p
        for p in range(len(dataset))
        if dataset.has_content(p) and not dataset.flags[p] & FLAG_OUTBOUND and dataset.ms[p] <= end
    ]


async def passes(vcc: VccClient, dataset: Dataset, state: Any) -> tuple[str, str]:
    """Pass 1; then one inbound interaction turns outbound, another is deleted; pass 2 and 3.
    The guids of the one that left and the one deleted."""
    engine = SyncEngine(
        vcc, filters=make_filters(direction="inbound"), since=SINCE, lookback=WHOLE,
        now=lambda: T0,
    )  # fmt: skip
    first = await one_pass(engine, state)
    inbound = inbound_positions(dataset)
    assert len(first) == len(inbound) > 10
    turned, deleted = inbound[3], inbound[7]
    dataset.flags[turned] |= FLAG_OUTBOUND
    dataset.hide(deleted)
    second = await one_pass(engine, state)
    assert [(c.kind, c.interaction.guid) for c in second] == [("removed", dataset.guids[deleted])]
    assert engine.last is not None
    assert (engine.last.removed, engine.last.left) == (1, 1)
    assert "1 removed, 1 left the filters," in engine.last.summary()
    assert await one_pass(engine, state) == []
    assert engine.last.left == 0  # nothing asked again: the row is out of the filters now
    return dataset.guids[turned], dataset.guids[deleted]


async def test_a_row_that_left_the_filters_is_kept_current_not_removed(
    vcc: VccClient, dataset: Dataset, target: str
) -> None:
    engine_filters = make_filters(direction="inbound")
    async with await open_state(target, engine_filters) as state:
        turned, deleted = await passes(vcc, dataset, state)
    store = await asyncio.to_thread(read_store, target)
    assert store[deleted].removed_at is not None
    assert store[turned].removed_at is None
    assert str(store[turned].data["direction"]).lower() == "outbound"  # its current version
    assert sum(row.removed_at is not None for row in store.values()) == 1


async def test_memory_state_forgets_a_row_that_left_the_filters(
    vcc: VccClient, dataset: Dataset
) -> None:
    state = MemoryState()
    turned, deleted = await passes(vcc, dataset, state)
    assert not await state.known([turned, deleted])
