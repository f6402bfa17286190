"""Sinks and the event loop: what writing pages costs the requests in flight.

``python -m benchmarks.sinks [--days 40] [--per-day 1500] [--page 100] [--page-latency 0.05]``
backfills one range from the fake API (in its own process, no rate limit) through each
sink, twice: as the store is written now (on a thread of the sink's own) and as it was
written before (the same blocking store called on the event loop). A ticker task measures
how late the loop wakes it (loop lag: every request in flight waits that long too; "stalled"
adds the lags up). The baseline is the same backfill with no sink. Prints one line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vccasync import Page, VccClient, make_query
from vccasync._query import SearchQuery
from vccasync.stores._base import BlockingStore, Sink, SinkContext, write_search
from vccasync.stores._jsonl import JsonlFile
from vccasync.stores._output import open_sink
from vccasync.stores._sqlite import SqliteFile

from .__main__ import START, Scenario, fake_api

TICK = 0.002  # seconds between the ticker's wake-ups


class OnTheLoop(SinkContext):
    """A blocking store called on the event loop, as the sinks did before."""

    def __init__(self, store: BlockingStore) -> None:
        self.store = store
        self.target = store.target
        self.checkpoint = store.checkpoint

    async def write(self, page: Page) -> None:
        self.store.write_page(page)

    async def close(self) -> None:
        self.store.close()


async def ticker(lags: list[float]) -> None:
    """Record how late each wake-up comes."""
    while True:
        due = time.perf_counter() + TICK
        await asyncio.sleep(TICK)
        lags.append(max(0.0, time.perf_counter() - due))


async def backfill(
    api_url: str, query: SearchQuery, open_: Callable[[], Awaitable[Sink | None]]
) -> dict[str, Any]:
    client = VccClient(
        client_id="demo-client",
        client_secret="demo-secret",
        api_url=api_url,
        auth_url=api_url.replace("/interaction-content", "/auth"),
        concurrency=8,
        requests_per_minute=None,
    )
    lags: list[float] = []
    async with client as vcc:
        await vcc.session.tokens.token()
        sink = await open_()
        watching = asyncio.create_task(ticker(lags))
        began, items = time.perf_counter(), 0

        def count(page: Page) -> None:
            nonlocal items
            items += len(page.items)

        plan = sink.checkpoint.plan() if sink else None
        # chronological: pages as they arrive may bring a split window's page before the
        # page that split it, which a checkpoint refuses (see the report of this benchmark)
        search = vcc.search(query, plan=plan)
        if sink is None:
            async for page in search.pages():
                count(page)
        else:
            await write_search(sink, search, count)
            await sink.close()
        seconds = time.perf_counter() - began
        watching.cancel()
        requests = vcc.stats.requests
    return {
        "items": items,
        "requests": requests,
        "seconds": seconds,
        "stalled": sum(lags),
        "max_lag_ms": max(lags) * 1000,
        "p99_lag_ms": statistics.quantiles(lags, n=100)[98] * 1000,
    }


def openers(folder: Path, query: SearchQuery) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def nothing() -> None:
        return None

    async def threaded(name: str) -> Sink:
        return await open_sink(str(folder / name), query, overwrite=True)

    async def on_loop(store: Callable[[Path, SearchQuery], BlockingStore], name: str) -> Any:
        return OnTheLoop(store(folder / name, query))

    return {
        "no sink": nothing,
        "JSONL, before (on the loop)": lambda: on_loop(JsonlFile, "a.jsonl"),
        "JSONL, now (own thread)": lambda: threaded("b.jsonl"),
        "SQLite, before (on the loop)": lambda: on_loop(SqliteFile, "a.sqlite"),
        "SQLite, now (own thread)": lambda: threaded("b.sqlite"),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sinks", description=__doc__)
    p.add_argument("--days", type=int, default=40)
    p.add_argument("--per-day", type=int, default=1500)
    p.add_argument("--page", type=int, default=100, help="interactions a page (limit)")
    p.add_argument("--page-latency", type=float, default=0.05, help="seconds per page")
    p.add_argument("--item-latency", type=float, default=0.0)
    p.add_argument("--folder", default=None, help="where the outputs go (default: a temp dir)")
    args = p.parse_args(argv)
    scenario = Scenario("s", "sinks", args.days, args.per_day)
    query = make_query(START, scenario.end, limit=args.page)
    with (
        fake_api(scenario, 1_000_000, args) as api_url,
        tempfile.TemporaryDirectory(dir=args.folder) as tmp,
    ):
        print(
            f"{args.days} days x {args.per_day}/day, pages of {args.page},"
            f" {args.page_latency:.3f} s a page, concurrency 8, no rate limit, chronological;"
            f" outputs in {tmp}"
        )
        head = f"{'sink':<30}{'items':>8}{'pages':>7}{'s':>7}{'x none':>8}{'stalled s':>10}"
        head += f"{'max lag ms':>11}{'p99 lag ms':>11}"
        print(head)
        print("-" * len(head))
        baseline = None
        for label, open_ in openers(Path(tmp), query).items():
            got = asyncio.run(backfill(api_url, query, open_))
            baseline = baseline or got["seconds"]
            print(
                f"{label:<30}{got['items']:>8}{got['requests']:>7}{got['seconds']:>7.2f}"
                f"{got['seconds'] / baseline:>8.2f}{got['stalled']:>10.2f}"
                f"{got['max_lag_ms']:>11.1f}{got['p99_lag_ms']:>11.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
