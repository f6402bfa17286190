"""Twelve dense days searched against a fake that pages each window in another order.

``python -m benchmarks.order [start|guid|hour ...]`` prints, per paging order, how many
interactions the search yielded, how many it should have, and how many were repeated or
missing (both must be 0), with the search requests it took.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from vccasync import VccClient
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=12)
SPEC = DatasetSpec(seed=11, start=START, days=12, per_day=3000, busy_day=2, busy_factor=3.0)


async def run(data: Any, order: Any) -> str:
    """One search of ``data`` in ``order``, as a line of figures."""
    want = {i["guid"] for i in data.expected(START, END)}
    async with FakeVccServer(data, FakeConfig(order=order)) as fake:
        async with VccClient(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            api_url=fake.api_url,
            auth_url=fake.auth_url,
            requests_per_minute=None,
            concurrency=6,
        ) as vcc:
            got = [i.guid async for i in vcc.interactions(START, END, limit=500)]
        requests = fake.stats.search_requests
    repeated = sum(n - 1 for n in Counter(got).values())
    return (
        f"order={order}: yielded {len(got):,}, expected {len(want):,}, repeated {repeated:,},"
        f" missing {len(want - set(got)):,}, search requests {requests}"
    )


def main(orders: list[str]) -> None:
    """Print one line per paging order."""
    data = generate(SPEC)
    for order in orders or ["start", "guid", "hour"]:
        print(asyncio.run(run(data, order)))


if __name__ == "__main__":
    main(sys.argv[1:])
