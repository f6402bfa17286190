"""A runnable example: back up three weeks of interactions from the project's fake API."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

from vccasync import VccClient
from vccasync.fake import DatasetSpec, FakeVccServer, generate


async def main() -> None:
    dataset = generate(DatasetSpec(start=datetime(2025, 1, 1, tzinfo=UTC), days=21))
    async with (
        FakeVccServer(dataset) as fake,
        VccClient(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            api_url=fake.api_url,
            auth_url=fake.auth_url,
        ) as vcc,
    ):
        kinds: Counter[str] = Counter()
        async for it in vcc.interactions("2025-01-01", "2025-01-21T23:59:59Z"):
            kinds.update(str(c.type) for c in it.content)
        print(f"{sum(kinds.values())} pieces of content in {vcc.stats.requests} requests:")
        for kind, count in kinds.most_common():
            print(f"  {kind:24} {count}")


if __name__ == "__main__":
    asyncio.run(main())
