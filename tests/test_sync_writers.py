"""One writer per account and store on PostgreSQL: a second sync of one account (whatever its
filters), or a second run of one backfill task, is refused at once (exit 2, one line) while the
first runs; the first ends normally and the lock goes with it. The first run is held at the
fake's gate, so the two certainly overlap."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vccasync._errors import InvalidRequestError
from vccasync._query import make_filters, make_query
from vccasync.fake import DatasetSpec, FakeVccServer, generate, running_in_thread
from vccasync.stores._output import open_sink
from vccasync.stores._postgres_changes import PostgresSyncState

from .cli_helpers import cli_env, held, run_cli, start_cli

ANCHOR = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
SPEC = DatasetSpec(seed=5, start=ANCHOR - timedelta(days=1), days=1, per_day=300, edge_every=None)
SYNC = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000"]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVccServer]:
    with running_in_thread(generate(SPEC)) as server:
        yield server


@pytest.fixture(autouse=True)
def open_gate(fake: FakeVccServer) -> Iterator[None]:
    yield
    fake.gate.open()


def finish(process: subprocess.Popen[bytes]) -> None:
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr


def test_a_second_sync_of_one_account_and_filters_is_refused(
    fake: FakeVccServer, pg_dsn: str
) -> None:
    args, env = [*SYNC, "-o", pg_dsn, "--account", "acme", "-q"], cli_env(fake)
    fake.gate.hold_after(0)
    first = start_cli(args, env)
    held(fake, first)
    second = run_cli(args, env)
    assert second.returncode == 2, second.stderr
    assert second.stderr.strip().splitlines() == [
        "vccasync: error: another sync of account acme is writing to this database"
    ]
    fake.gate.open()
    finish(first)
    again = run_cli(args, env)  # the first run's lock went with it
    assert again.returncode == 0, again.stderr


def test_a_second_run_of_one_task_is_refused(
    fake: FakeVccServer, pg_dsn: str, tmp_path: Path
) -> None:
    task = {
        "account": "north-1", "start": SPEC.start.isoformat(), "end": ANCHOR.isoformat(),
        "filters": {}, "requests_per_minute": None,
    }  # fmt: skip
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    env = cli_env(fake, account="north-1")
    args = ["run-task", str(path), "--output", pg_dsn]
    fake.gate.hold_after(0)
    first = start_cli(args, env)
    held(fake, first)
    second = run_cli(args, env)
    assert second.returncode == 2, second.stderr
    [line] = second.stderr.strip().splitlines()
    assert line.startswith("vccasync: error: another run of task ")
    assert line.endswith(" of account north-1 is running on this database")
    fake.gate.open()
    finish(first)


async def test_the_lease_is_per_account_whatever_the_filters_and_ends_with_the_run(
    pg_dsn: str,
) -> None:
    inbound = make_filters(direction="inbound")
    first = await PostgresSyncState.connect(pg_dsn, inbound, account="a")
    try:
        for filters in (inbound, make_filters()):  # another filter set of "a" writes its rows too
            with pytest.raises(InvalidRequestError, match="another sync of account a is writing"):
                await PostgresSyncState.connect(pg_dsn, filters, account="a")
        other = await PostgresSyncState.connect(pg_dsn, inbound, account="b")
        await other.close()
    finally:
        await first.close()
    await (await PostgresSyncState.connect(pg_dsn, inbound, account="a")).close()

    query = make_query(SPEC.start, ANCHOR)
    sink = await open_sink(pg_dsn, query, account="a")
    try:
        with pytest.raises(InvalidRequestError, match="another run of task"):
            await open_sink(pg_dsn, query, account="a")
        await (await open_sink(pg_dsn, query, account="b")).close()
    finally:
        await sink.close()
