"""The fake API with time-varying data on a manual clock, for the sync tests (fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from vccasync import VccClient
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake._dataset import Dataset
from vccasync.fake._timeline import FakeClock, Timeline, TimelineSpec

from .conftest import client_for

__all__ = [
    "CHANGING",
    "LOOKBACK",
    "SINCE",
    "SPEC",
    "T0",
    "clock",
    "dataset",
    "fake",
    "timeline",
    "vcc",
]

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
SINCE = datetime(2026, 11, 17, tzinfo=UTC)
LOOKBACK = timedelta(hours=24)
SPEC = DatasetSpec(seed=3, start=SINCE, days=4, per_day=120, edge_every=None)
CHANGING = TimelineSpec(late_rate=0.3, update_rate=0.4, removal_rate=0.05)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def timeline(dataset: Dataset, clock: FakeClock) -> Timeline:
    return Timeline.for_dataset(dataset, clock, CHANGING)


@pytest.fixture
async def fake(dataset: Dataset, timeline: Timeline) -> AsyncIterator[FakeVccServer]:
    async with FakeVccServer(dataset, FakeConfig(timeline=timeline)) as server:
        yield server


@pytest.fixture
async def vcc(fake: FakeVccServer) -> AsyncIterator[VccClient]:
    async with client_for(fake, concurrency=4) as client:
        yield client
