"""Ordered iteration always completes: the window the consumer waits for can always fetch,
whatever the buffer ahead holds (repair windows included) and however the server pages."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from vccasync._query import make_query
from vccasync._search import InteractionSearch
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake._config import ORDERS

from .conftest import client_for

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 12
HANG = 60  # seconds: a hang detector for a run of a few seconds, not a timing assertion
DATA = generate(DatasetSpec(seed=5, start=START, days=DAYS, per_day=300))


@pytest.mark.parametrize("order", ORDERS)
@settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a hang costs HANG seconds: no shrinking
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    buffer_items=st.integers(1, 400),
    limit=st.sampled_from([20, 50, 100]),
    concurrency=st.integers(2, 8),
    days=st.integers(4, DAYS),
)
@example(buffer_items=20, limit=20, concurrency=6, days=8)  # repair windows held the buffer
async def test_ordered_iteration_completes_exactly(
    order: Any, buffer_items: int, limit: int, concurrency: int, days: int
) -> None:
    end = START + timedelta(days=days)
    want = Counter(i["guid"] for i in DATA.expected(START, end))
    async with (
        FakeVccServer(DATA, FakeConfig(order=order, bind_tokens=True)) as fake,
        client_for(fake, concurrency=concurrency) as vcc,
    ):
        query = make_query(START, end, limit=limit)
        search = InteractionSearch(
            vcc.session,
            query,
            concurrency=concurrency,
            buffer_items=buffer_items,
            budget=vcc.session.limiter,
        )
        async with asyncio.timeout(HANG):
            got = Counter([item.guid async for item in search])
    assert got == want
