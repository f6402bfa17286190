"""The core client on the fake API in-process: throughput, requests in flight, faults.

``python -m benchmarks.core`` runs the same 122-day range (about 18,000 interactions with a
1,200-interaction tie) three ways and prints one line each: no latency and no limit (the
client's and fake's own speed), 0.3 s a page (windows in flight at once), and the faulty run
of ``tests/test_search.py`` (10 % faults of every kind, tokens living 2 s, a server-side limit
of 40 requests a second, pages of 60).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from vccasync import VccClient
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate

START = datetime(2025, 1, 1, tzinfo=UTC)
RANGE = (START + timedelta(days=3, hours=5), START + timedelta(days=125, minutes=7))


def client_of(fake: FakeVccServer, **options: Any) -> VccClient:
    """A client of the fake API with ``options``."""
    return VccClient(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        api_url=fake.api_url,
        auth_url=fake.auth_url,
        **options,
    )


async def run(label: str, dataset: Any, config: FakeConfig, limit: int, **options: Any) -> None:
    async with FakeVccServer(dataset, config) as fake:
        async with client_of(fake, **options) as vcc:
            began, count = time.perf_counter(), 0
            async for _ in vcc.interactions(*RANGE, limit=limit):
                count += 1
            seconds = time.perf_counter() - began
            stats, refreshes = vcc.stats, vcc.session.tokens.refreshes
        print(
            f"{label}: {count:,} interactions in {seconds:.1f} s ({count / seconds:,.0f}/s);"
            f" {stats.requests} requests, {stats.retries} retries, {stats.rate_limited} 429s,"
            f" {refreshes} tokens; in flight at most {fake.stats.max_in_flight} (server);"
            f" faults {dict(sorted(fake.stats.faults.items())) or 'none'}",
            flush=True,
        )


async def main() -> None:
    tie = START + timedelta(days=40, hours=9)
    dataset = generate(DatasetSpec(seed=7, start=START, days=130, tie_size=1200, tie_at=tie))
    await run("no latency, no limit", dataset, FakeConfig(), 1000, requests_per_minute=None)
    await run(
        "0.3 s a page, concurrency 8",
        dataset,
        FakeConfig(page_latency=0.3),
        1000,
        requests_per_minute=None,
        concurrency=8,
    )
    faults = FaultConfig(rate=0.10, seed=3, stall_seconds=1.5, retry_after="0.3")
    await run(
        "10 % faults, 2 s tokens, 40 req/s server limit",
        dataset,
        FakeConfig(token_ttl=2.0, faults=faults, rate_limit_per_minute=40, rate_limit_window=1.0),
        60,
        requests_per_minute=3000,
        timeout=0.5,
        max_attempts=8,
        concurrency=6,
        backoff_initial=0.001,
        backoff_max=0.01,
    )


if __name__ == "__main__":
    asyncio.run(main())
