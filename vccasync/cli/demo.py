"""``--demo``: the project's fake VCC API in-process on 127.0.0.1, with a fixed seeded dataset.

The data covers 2025-01-01 to 2025-04-30 (UTC), 300 interactions a day. Pages take a moment
to serve and the client keeps its default budget of 160 requests a minute (which the server
also enforces, answering 429 beyond it), so progress is visible, yet January to March takes
about ten seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate

__all__ = ["DATA", "DEMO_CONFIG", "DEMO_SPEC", "client_settings", "demo_api"]

DEMO_SPEC = DatasetSpec(seed=2025, start=datetime(2025, 1, 1, tzinfo=UTC), days=120, per_day=300)
DEMO_CONFIG = FakeConfig(page_latency=0.4, rate_limit_per_minute=160)
_LAST_DAY = DEMO_SPEC.start + timedelta(days=DEMO_SPEC.days - 1)
DATA = f"seeded data of {DEMO_SPEC.start:%Y-%m-%d} to {_LAST_DAY:%Y-%m-%d}"  # for --demo's help


@asynccontextmanager
async def demo_api(
    spec: DatasetSpec = DEMO_SPEC, config: FakeConfig = DEMO_CONFIG
) -> AsyncIterator[FakeVccServer]:
    """The demo API, listening on a free loopback port while the context lasts."""
    async with FakeVccServer(generate(spec), config) as server:
        yield server


def client_settings(server: FakeVccServer) -> dict[str, Any]:
    """The client settings that point at ``server`` (they replace any ``VCC_*`` variable)."""
    return {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "api_url": server.api_url,
        "auth_url": server.auth_url,
    }
