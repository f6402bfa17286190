"""PostgreSQL sink throughput and multi-account scaling on Dask, against stated ideals.

    python benchmarks/pg_dask.py [--dsn postgresql://...] [--durable] [--interactions N]

1. ``sink``: interactions per second through ``PostgresSink.write`` (pages of 1,000 already in
   memory: upserts of interactions and content plus the checkpoint, one transaction a page).
   Ideal: a plain multi-row INSERT of the same JSON documents into a bare jsonb table.
2. ``task``: one task end to end from the fake API (no rate limit) into PostgreSQL.
3. ``accounts``: wall time of a rate-limited backfill of one account, then of two accounts at
   once, on a LocalCluster of two worker processes. Each account has its own budget, so the
   ideal ratio (two accounts / one account) is 1.0.

Without ``--dsn`` a throwaway server is started (Debian's binaries); ``--durable`` turns its
fsync and synchronous_commit back on (the test settings turn them off).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pg import PgServer, find_bindir
from vccasync import Window
from vccasync._converter import structure_interaction
from vccasync._windows import Page
from vccasync.distributed._tasks import plan, run_task
from vccasync.fake import DatasetSpec, FakeConfig, generate, running_in_thread
from vccasync.stores._postgres import PostgresSink, _dumps

START = datetime(2025, 1, 1, tzinfo=UTC)


async def fresh_database(admin_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


async def bench_sink(admin_dsn: str, count: int) -> dict[str, float]:
    days = max(1, count // 1000)
    dataset = generate(DatasetSpec(seed=1, start=START, days=days, per_day=count // days))
    items = [structure_interaction(i) for i in dataset.expected(START, dataset.spec.end)]
    window = Window(START, dataset.spec.end, closed=True)
    pages = [Page(window, items[n : n + 1000], "t") for n in range(0, len(items), 1000)]
    pages[-1] = Page(window, pages[-1].items, None)

    dsn = await fresh_database(admin_dsn, "bench_sink")
    async with PostgresSink(dsn, account="bench") as sink:
        await sink.begin("t", {}, [window])
        began = time.perf_counter()
        for page in pages:
            await sink.write("t", page)
        sink_s = time.perf_counter() - began

    dsn = await fresh_database(admin_dsn, "bench_ideal")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE docs (data jsonb)")
        from vccasync._converter import to_api

        began = time.perf_counter()
        for page in pages:
            doc = _dumps([to_api(i) for i in page.items])
            await conn.execute(
                "INSERT INTO docs SELECT d FROM jsonb_array_elements($1::jsonb) d", doc
            )
        ideal_s = time.perf_counter() - began
    finally:
        await conn.close()
    return {"interactions": len(items), "sink_s": sink_s, "ideal_s": ideal_s}


async def bench_task(admin_dsn: str) -> dict[str, float]:
    dataset = generate(DatasetSpec(seed=2, start=START, days=60, per_day=500))
    dsn = await fresh_database(admin_dsn, "bench_task")
    with running_in_thread(dataset) as fake:
        creds = {
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "api_url": fake.api_url,
            "auth_url": fake.auth_url,
        }
        (task,) = plan(START, dataset.spec.end, accounts=["a"], split_by="none",
                       requests_per_minute=1e6)  # fmt: skip
        began = time.perf_counter()
        result = await run_task(task, dsn, credentials_for=lambda _: creds, concurrency=4)
        seconds = time.perf_counter() - began
    return {"interactions": result.written, "seconds": seconds, "requests": result.requests}


def bench_accounts(admin_dsn: str) -> dict[str, float]:
    from distributed import Client, LocalCluster

    from vccasync.distributed._dask import run_tasks

    window, per_window = 2.0, 20  # a compressed minute: 20 requests per 2 s per account
    config = FakeConfig(rate_limit_per_minute=per_window, rate_limit_window=window)
    north = generate(DatasetSpec(seed=3, start=START, days=56, per_day=100))
    south = generate(DatasetSpec(seed=4, start=START, days=56, per_day=100))
    end = START + timedelta(days=56)
    times: dict[str, float] = {}
    with (
        running_in_thread(north, config) as a,
        running_in_thread(south, config) as b,
        tempfile.TemporaryDirectory() as folder,
        LocalCluster(n_workers=2, processes=True, threads_per_worker=2, dashboard_address=None,
                     host="127.0.0.1") as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        path = Path(folder) / "accounts.toml"
        path.write_text(
            "".join(
                f'[accounts.{n}]\nclient_id = "{f.client_id}"\nclient_secret = "{f.client_secret}"'
                f'\napi_url = "{f.api_url}"\nauth_url = "{f.auth_url}"\n'
                for n, f in (("north", a), ("south", b))
            )
        )
        for label, accounts in (("one", ["north"]), ("two", ["north", "south"])):
            dsn = asyncio.run(fresh_database(admin_dsn, f"bench_{label}"))
            tasks = plan(START, end, accounts=accounts, split_by="week",
                         requests_per_minute=per_window * 60 / window, parallel=2,
                         rate_window=window)  # fmt: skip
            began = time.perf_counter()
            results = run_tasks(client, tasks, dsn, accounts_file=str(path), progress=None,
                                page_size=100)  # fmt: skip
            times[label] = time.perf_counter() - began
            times[f"{label}_written"] = sum(r.written for r in results)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="an existing server's admin database URL")
    parser.add_argument("--durable", action="store_true", help="fsync on (throwaway server)")
    parser.add_argument("--interactions", type=int, default=100_000)
    args = parser.parse_args()
    server = None
    if args.dsn is None:
        bindir = find_bindir()
        if bindir is None:
            sys.exit("no PostgreSQL server binaries: apt-get install postgresql, or give --dsn")
        durable = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
        server = PgServer(bindir, durable if args.durable else None)
        server.start()
        args.dsn = server.dsn()
    try:
        s = asyncio.run(bench_sink(args.dsn, args.interactions))
        n = s["interactions"]
        print(
            f"sink:     {n:,.0f} interactions, {n / s['sink_s']:,.0f}/s through PostgresSink"
            f" (ideal, bare jsonb INSERT: {n / s['ideal_s']:,.0f}/s; ratio"
            f" {s['ideal_s'] / s['sink_s']:.2f})"
        )
        t = asyncio.run(bench_task(args.dsn))
        print(
            f"task:     {t['interactions']:,.0f} interactions from the fake API in"
            f" {t['seconds']:.2f} s = {t['interactions'] / t['seconds']:,.0f}/s"
            f" ({t['requests']:.0f} requests)"
        )
        a = bench_accounts(args.dsn)
        print(
            f"accounts: one account {a['one']:.1f} s ({a['one_written']:,.0f} interactions),"
            f" two accounts {a['two']:.1f} s ({a['two_written']:,.0f}); ratio"
            f" {a['two'] / a['one']:.2f} (ideal 1.00: each account has its own budget)"
        )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
