"""What a sync pass costs: ``python -m benchmarks.sync``.

The fake API runs in-process with time-varying data on a manual clock (``2026-11-20T12:00Z``)
and 0.3 s a page; the client has no request budget, so seconds show latency, not a rate
limit. Each line is one pass over ``[now - lookback - 5 min, now]`` (a ``--follow`` pass
after one 5 minutes earlier): its requests and seconds, on a quiet day (about 2,000
interactions a day) and a busy one (today, up to now, has ten times as many). Expected requests:
one per 7-day window plus one per further 1,000 interactions, a few more when a full page
hands the rest of its window to sub-windows. The ``sqlite`` lines are the same 24-hour pass
into an SQLite store (``vccasync sync``'s state): the pass that fills it, then the next one
five minutes later, which writes only what changed.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta

from vccasync._client import VccClient
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake._timeline import FakeClock, Timeline
from vccasync.stores._output import open_state
from vccasync.sync import PassResult, SyncEngine

from .core import client_of

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
EVERY = timedelta(minutes=5)
LOOKBACKS = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
    timedelta(hours=48),
    timedelta(days=7),
)


async def measure(label: str, spec: DatasetSpec) -> None:
    dataset = generate(spec)
    clock = FakeClock(NOW)
    config = FakeConfig(timeline=Timeline.for_dataset(dataset, clock), page_latency=0.3)
    async with (
        FakeVccServer(dataset, config) as fake,
        client_of(fake, requests_per_minute=None) as vcc,
    ):
        for lookback in LOOKBACKS:
            engine = SyncEngine(vcc, since=NOW - lookback - EVERY, now=clock.now)
            async for _ in engine.changes(once=True):
                pass
            assert engine.last is not None
            report(f"{label}: lookback {lookback!s:>15}", engine.last)
        await into_sqlite(label, vcc, clock)


def report(what: str, result: PassResult) -> None:
    seen = result.new + result.changed + result.unchanged
    print(
        f"{what}: {seen:>6,} interactions ({result.new:,} new, {result.changed:,} changed,"
        f" {result.removed:,} removed), {result.requests:>3} requests, {result.seconds:5.1f} s",
        flush=True,
    )


async def into_sqlite(label: str, vcc: VccClient, clock: FakeClock) -> None:
    """A 24-hour pass into an SQLite store, then the next one 5 minutes later."""
    lookback = timedelta(hours=24)
    with tempfile.TemporaryDirectory() as folder:
        engine = SyncEngine(vcc, since=clock.now() - lookback, now=clock.now)
        async with await open_state(f"{folder}/sync.sqlite", engine.filters, engine.limit) as state:
            engine.state = state
            for what in ("fills", "next "):
                async for _ in engine.changes(once=True):
                    pass
                assert engine.last is not None
                report(f"{label}: sqlite, 24 h, {what}", engine.last)
                clock.advance(EVERY)


async def main() -> None:
    start = datetime(2026, 11, 11, tzinfo=UTC)  # midnight: office hours fall in the day
    quiet = DatasetSpec(seed=11, start=start, days=10, per_day=2000, edge_every=None)
    await measure("quiet", quiet)
    await measure(
        "busy ",
        DatasetSpec(
            seed=11, start=start, days=10, per_day=2000, edge_every=None, busy_day=9, busy_factor=10
        ),
    )


if __name__ == "__main__":
    asyncio.run(main())
