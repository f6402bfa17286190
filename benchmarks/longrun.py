"""Does a long ``sync --follow`` stay flat? ``python -m benchmarks.longrun --passes 500``.

Runs passes back to back (``--every 0s``) into an SQLite store with ``--content-dest``, as the
command does (one engine; one content feed draining the store's durable queue on its own; the
benchmark waits for the queue to empty between passes), against the fake API in a
thread of its own with small, changing data: its manual clock moves a minute a pass, so
content keeps arriving and changing. Prints the client's resident memory, open file
descriptors and asyncio tasks (of the client's loop) after pass 10 and after the last pass.
The fake's request log is cleared each pass so that only the client's memory counts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from attrs import frozen

from vccasync.cli._content import DEFAULT_WORKERS
from vccasync.content._feed import ContentFeed
from vccasync.fake import DatasetSpec, FakeConfig, generate, running_in_thread
from vccasync.fake._timeline import FakeClock, Timeline, TimelineSpec
from vccasync.stores._contract import ALL_TYPES, StoreOptions
from vccasync.stores._registry import open_store
from vccasync.sync import PassResult, SyncEngine

from .core import client_of

__all__ = ["Sample", "follow", "main"]

NOW: Final = datetime(2026, 11, 20, 12, tzinfo=UTC)
SPEC: Final = DatasetSpec(
    seed=8, start=NOW - timedelta(days=1), days=2, per_day=200, edge_every=None,
    content_scale=0.0005,
)  # fmt: skip
CHANGING: Final = TimelineSpec(late_rate=0.3, update_rate=0.3, removal_rate=0.02)
STEP: Final = timedelta(minutes=1)  # the fake's clock moves this much a pass
LOOKBACK: Final = timedelta(hours=2)


@frozen
class Sample:
    """The client process after a pass: resident KiB, open descriptors, tasks of its loop."""

    passes: int
    rss_kib: int
    fds: int
    tasks: int

    def line(self) -> str:
        return (
            f"after pass {self.passes:>4}: RSS {self.rss_kib / 1024:7.1f} MiB,"
            f" {self.fds:>3} open fds, {self.tasks:>3} asyncio tasks"
        )


def measure(passes: int) -> Sample:
    """This process now (Linux /proc)."""
    gc.collect()
    with open("/proc/self/status", encoding="ascii") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return Sample(passes, rss, len(os.listdir("/proc/self/fd")), len(asyncio.all_tasks()))


async def follow(passes: int, root: Path, sample_at: Collection[int]) -> tuple[list[Sample], int]:
    """``passes`` follow passes into ``root``/store.sqlite and ``root``/content: the samples
    taken after the passes of ``sample_at`` (once the feed drained) and the changes seen."""
    dataset = generate(SPEC)
    clock = FakeClock(NOW)
    config = FakeConfig(timeline=Timeline.for_dataset(dataset, clock, CHANGING))
    samples: list[Sample] = []
    changes = 0
    with running_in_thread(dataset, config) as fake:
        async with client_of(fake, requests_per_minute=None) as vcc:
            options = StoreOptions(content=ALL_TYPES)
            state = await open_store(str(root / "store.sqlite"), options)
            feed = ContentFeed(vcc.download_all, state, root / "content", DEFAULT_WORKERS)
            feed.start()
            done = 0

            class Count:
                def pass_done(self, result: PassResult, now: datetime) -> None:
                    nonlocal done
                    done += 1

                def pass_stopped(self, requests: int, rate_limited: int) -> None:
                    raise AssertionError("a pass failed")

            async def between_passes(seconds: float) -> None:
                while (await state.queue_status()).depth:  # noqa: ASYNC110 - polls the store
                    await asyncio.sleep(0.02)
                if done in sample_at:
                    samples.append(measure(done))
                fake.reset_stats()
                clock.advance(STEP)

            engine = SyncEngine(
                vcc, state, since=SPEC.start, lookback=LOOKBACK, now=clock.now,
                sleep=between_passes, observer=Count(), should_stop=lambda: done >= passes,
            )  # fmt: skip
            try:
                async for _change in engine.changes(every=timedelta(0)):
                    changes += 1
                await feed.finish()
            finally:
                feed.cancel()
                await state.close()
    return samples, changes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.longrun", description=__doc__)
    parser.add_argument("--passes", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        samples, changes = asyncio.run(follow(args.passes, Path(folder), {10, args.passes}))
        pieces = sum(1 for _ in (Path(folder) / "content").rglob("*") if _.is_file())
    print(f"{args.passes} passes, {changes:,} changes, {pieces:,} files in the archive")
    for sample in samples:
        print(sample.line())
    first, last = samples[0], samples[-1]
    print(
        f"growth from pass {first.passes} to pass {last.passes}:"
        f" RSS {(last.rss_kib - first.rss_kib) / 1024:+.1f} MiB,"
        f" fds {last.fds - first.fds:+d}, tasks {last.tasks - first.tasks:+d}"
    )


if __name__ == "__main__":
    main()
