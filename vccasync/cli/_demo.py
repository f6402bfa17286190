"""``--demo``: the project's fake VCC API in-process on 127.0.0.1, with a fixed seeded dataset.
Every command's demo settings are here.

The data covers 2025-01-01 to 2025-04-30 (UTC), 300 interactions a day. Pages take a moment
to serve and the client keeps its default budget of 160 requests a minute (which the server
also enforces, answering 429 beyond it), so progress is visible, yet January to March takes
about ten seconds. ``content`` and ``purge`` serve small content at a higher rate, and the
demo's fake allows faster deletions than the real API, so that a demo purge takes seconds;
``sync`` serves data changing live around today.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import attrs

from vccasync.content._journal import read_records, replay
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake._deletes import DeleteConfig, remove
from vccasync.fake._timeline import FakeClock, Timeline, demo_spec

__all__ = [
    "CONTENT_CONFIG",
    "CONTENT_DATA",
    "CONTENT_SPEC",
    "DATA",
    "DEMO_CONFIG",
    "DEMO_SPEC",
    "PURGE_CONFIG",
    "PURGE_DELETE_RATE",
    "SYNC_DATA",
    "SYNC_DAYS",
    "SYNC_SINCE",
    "client_settings",
    "demo_api",
    "remembering",
    "sync_demo",
]

DEMO_SPEC = DatasetSpec(seed=2025, start=datetime(2025, 1, 1, tzinfo=UTC), days=120, per_day=300)
DEMO_CONFIG = FakeConfig(page_latency=0.4, rate_limit_per_minute=160)
_LAST_DAY = DEMO_SPEC.start + timedelta(days=DEMO_SPEC.days - 1)
DATA = f"seeded data of {DEMO_SPEC.start:%Y-%m-%d} to {_LAST_DAY:%Y-%m-%d}"  # for --demo's help

# content and purge: content small enough to download a day of it in seconds
CONTENT_SPEC: Final = attrs.evolve(DEMO_SPEC, content_scale=0.01)
CONTENT_CONFIG: Final = attrs.evolve(DEMO_CONFIG, rate_limit_per_minute=6000)
CONTENT_DATA: Final = f"{DATA}, with small content"
PURGE_DELETE_RATE: Final = 1200  # deletions a minute the purge demo's fake allows
PURGE_CONFIG: Final = attrs.evolve(
    CONTENT_CONFIG, deletes=DeleteConfig(per_minute=PURGE_DELETE_RATE)
)

# sync: data changing live around today
SYNC_DAYS: Final = 3  # the demo's data: three days before today, today and tomorrow
SYNC_SINCE: Final = timedelta(days=2)  # a first demo sync starts this long before now
SYNC_DATA: Final = (
    f"seeded data changing live, from {SYNC_DAYS} days before today to tomorrow"
    f" (--since is not needed: it defaults to {SYNC_SINCE.days} days ago)"
)


def sync_demo() -> tuple[DatasetSpec, FakeConfig]:
    """The sync demo's data and server: small content, changing with the wall clock."""
    spec = attrs.evolve(demo_spec(days=SYNC_DAYS), content_scale=0.01)
    timeline = Timeline(FakeClock(), seed=spec.seed)
    return spec, attrs.evolve(DEMO_CONFIG, timeline=timeline)


def remembering(journal: Path) -> Callable[[FakeVccServer], None]:
    """What a purge demo's API must forget before it serves: the pieces ``journal`` (an
    archive's deletion journal) records as deleted. The demo's data is made afresh each run;
    a real API remembers by itself."""

    def forget(server: FakeVccServer) -> None:
        for guid, key in replay(read_records(journal)).gone:
            remove(server.dataset, guid, key)

    return forget


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
