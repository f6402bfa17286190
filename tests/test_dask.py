"""A two-account backfill on a real Dask LocalCluster (two worker processes) into PostgreSQL.

Two fake APIs on loopback, each enforcing its account's budget in a fast sliding window;
a worker is killed mid-run; the database must hold exactly both datasets, once each.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from distributed import Client, LocalCluster

from vccasync.distributed._dask import Progress, run_tasks
from vccasync.distributed._tasks import Task, plan
from vccasync.fake import DatasetSpec, FakeConfig, generate, running_in_thread
from vccasync.fake._server import FakeVccServer
from vccasync.stores._checkpoint import checkpoint_name

START = datetime(2025, 3, 1, tzinfo=UTC)
WINDOW = 2.0  # seconds: the fakes' rate-limit window (a compressed minute)
PER_WINDOW = 20  # each account's budget: requests per window
BUDGET = PER_WINDOW * 60 / WINDOW  # the same budget in requests per minute
PAGE_SIZE = 40

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=2,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeVccServer]]:
    config = FakeConfig(rate_limit_per_minute=PER_WINDOW, rate_limit_window=WINDOW)
    north = generate(DatasetSpec(seed=21, start=START, days=45, per_day=45))
    south = generate(DatasetSpec(seed=22, start=START, days=45, per_day=30))
    with (
        running_in_thread(north, config) as a,
        running_in_thread(south, config) as b,
    ):
        yield {"north": a, "south": b}


def accounts_file(tmp_path: Path, fakes: dict[str, FakeVccServer]) -> str:
    lines = []
    for name, fake in fakes.items():
        lines += [
            f"[accounts.{name}]",
            f'client_id = "{fake.client_id}"',
            f'client_secret = "{fake.client_secret}"',
            f'api_url = "{fake.api_url}"',
            f'auth_url = "{fake.auth_url}"',
        ]
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def busiest_windows(fake: FakeVccServer) -> int:
    """The most search requests the fake received in any sliding rate-limit window."""
    times = sorted(r.time for r in fake.stats.records)
    most, first = 0, 0
    for last, moment in enumerate(times):
        while times[first] <= moment - WINDOW:
            first += 1
        most = max(most, last - first + 1)
    return most


async def stored(dsn: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT account, guid FROM interactions")
    finally:
        await conn.close()
    return [(r["account"], r["guid"]) for r in rows]


async def mid_window_tasks(dsn: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT account, task FROM vccasync_windows WHERE token IS NOT NULL"
        )
    finally:
        await conn.close()
    return [(r["account"], r["task"]) for r in rows]


def task_of(tasks: list[Task], page_size: int) -> dict[str, str]:
    """Task ids by the name of their checkpoint in the database."""
    return {checkpoint_name(t.search_query(page_size)): t.id for t in tasks}


def test_two_accounts_on_two_workers_survive_a_killed_worker(
    cluster: Client, fakes: dict[str, FakeVccServer], pg_dsn: str, tmp_path: Path
) -> None:
    start, end = START + timedelta(hours=7), START + timedelta(days=45)
    tasks = plan(
        start,
        end,
        accounts=list(fakes),
        split_by="week",
        requests_per_minute=BUDGET,
        parallel=2,
        rate_window=WINDOW,
    )
    assert {t.account for t in tasks} == set(fakes) and len(tasks) == 16
    creds = accounts_file(tmp_path, fakes)
    for fake in fakes.values():
        fake.reset_stats()
    events: list[Progress] = []
    killed: list[tuple[str, str]] = []  # (account, task id) of the task whose worker died

    def written_by(which: tuple[str, str]) -> int:
        task = next(t for t in tasks if (t.account, t.id) == which)
        return len(fakes[task.account].dataset.expected(task.start, task.end))

    def on_progress(event: Progress) -> None:
        events.append(event)
        if killed:
            return
        # kill the worker of a task that stands mid-window (pages written, a token saved)
        ids = task_of(tasks, PAGE_SIZE)
        mid = [(account, ids[name]) for account, name in asyncio.run(mid_window_tasks(pg_dsn))]
        for worker, keys in cluster.processing().items():
            hit = [m for m in mid if any(f"-{m[0]}-{m[1]}" in str(key) for key in keys)]
            if hit:
                pid = cluster.run(os.getpid, workers=[worker])[worker]
                os.kill(pid, signal.SIGKILL)
                killed.append(hit[0])
                return

    results = run_tasks(
        cluster,
        tasks,
        pg_dsn,
        accounts_file=creds,
        progress=on_progress,
        page_size=PAGE_SIZE,
        concurrency=2,
        backoff_initial=0.01,
    )
    assert killed and len(results) == len(tasks) == len(events)
    resumed = [r for r in results if (r.account, r.task) == killed[0]]
    assert resumed and resumed[0].written < written_by(killed[0])  # went on, did not restart
    assert [e.done for e in events] == list(range(1, len(tasks) + 1))

    want = {
        (name, item["guid"])
        for name, fake in fakes.items()
        for item in fake.dataset.expected(start, end)
    }
    got = asyncio.run(stored(pg_dsn))
    assert len(got) == len(set(got)) == len(want) and set(got) == want

    for fake in fakes.values():  # each account stayed within its budget in every window
        assert fake.stats.rate_limited == 0
        assert busiest_windows(fake) <= PER_WINDOW

    # a rerun of the whole plan finds every task finished: no search, nothing new
    for fake in fakes.values():
        fake.reset_stats()
    again = run_tasks(
        cluster, tasks, pg_dsn, accounts_file=creds, progress=None, page_size=PAGE_SIZE
    )
    assert sum(r.written for r in again) == 0
    assert all(fake.stats.search_requests == 0 for fake in fakes.values())
    assert sorted(asyncio.run(stored(pg_dsn))) == sorted(got)


def test_missing_credentials_fail_the_task_not_the_cluster(
    cluster: Client, pg_dsn: str, tmp_path: Any
) -> None:
    tasks = plan(START, START + timedelta(days=1), accounts=["nobody"], split_by="none")
    with pytest.raises(Exception, match="no credentials for account 'nobody'"):
        run_tasks(cluster, tasks, pg_dsn, progress=None, retries=0)
