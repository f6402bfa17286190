"""``vccasync interactions --output postgresql://``, ``plan`` and ``run-task`` as subprocesses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from vccasync.fake import DatasetSpec, FakeVccServer, generate, running_in_thread

from .cli_helpers import cli_env, run_cli
from .conftest import api_shape

START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVccServer]:
    with running_in_thread(generate(DatasetSpec(seed=31, start=START, days=50, per_day=40))) as f:
        yield f


def rows(dsn: str) -> list[dict[str, Any]]:
    async def fetch() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            found = await conn.fetch("SELECT account, data FROM interactions ORDER BY start, guid")
        finally:
            await conn.close()
        return [{"account": r["account"], **json.loads(r["data"])} for r in found]

    return asyncio.run(fetch())


def test_interactions_into_postgresql_and_a_rerun(fake: FakeVccServer, pg_dsn: str) -> None:
    args = ["interactions", "--start", "2025-01-03", "--end", "2025-02-10", "--output", pg_dsn]
    done = run_cli([*args, "--account", "acme", "--direction", "inbound", "-q"], cli_env(fake))
    assert done.returncode == 0, done.stderr
    want = [
        api_shape(i)
        for i in fake.dataset.expected(
            datetime(2025, 1, 3, tzinfo=UTC),
            datetime(2025, 2, 10, 23, 59, 59, 999000, tzinfo=UTC),
            direction="inbound",
        )
    ]
    got = rows(pg_dsn)
    assert [{k: v for k, v in g.items() if k != "account"} for g in got] == want
    assert {g["account"] for g in got} == {"acme"}
    again = run_cli([*args, "--account", "acme", "--direction", "inbound"], cli_env(fake))
    assert again.returncode == 0 and "already complete" in again.stderr
    assert len(rows(pg_dsn)) == len(want)


@pytest.mark.slow
def test_plan_then_run_each_task(fake: FakeVccServer, pg_dsn: str, tmp_path: Path) -> None:
    planned = run_cli(
        ["plan", "--start", "2025-01-10", "--end", "2025-02-19", "--account", "north-1",
         "--split-by", "week", "--parallel", "2", "--account-rpm", "6000"],
        cli_env(None),
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert len(lines) == 7 and all(json.loads(line)["account"] == "north-1" for line in lines)
    env = cli_env(fake, account="north-1")
    for n, line in enumerate(lines):
        path = tmp_path / f"task-{n}.json"
        path.write_text(line)
        done = run_cli(["run-task", str(path), "--output", pg_dsn], env)
        assert done.returncode == 0, done.stderr
        assert "complete" in done.stderr and "interactions written" in done.stderr
    want = fake.dataset.expected(
        datetime(2025, 1, 10, tzinfo=UTC), datetime(2025, 2, 19, 23, 59, 59, 999000, tzinfo=UTC)
    )
    got = rows(pg_dsn)
    assert [g["guid"] for g in got] == [w["guid"] for w in want]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run-task", "-", "--output", "out.sqlite"], "must be a postgresql:// URL"),
        (["run-task", "missing.json", "--output", "postgresql://h/db"], "cannot read"),
        (["run-task", "-", "--output", "postgresql://h/db"], "no credentials for account 'x'"),
        (["plan", "--start", "2025-01-01", "--end", "2025-01-02"], "--account"),
        (["plan", "--start", "2025-01-02", "--end", "2024-01-01", "--account", "a"], "before"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    task = json.dumps(
        {"account": "x", "start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}
    )
    done = subprocess.run(
        [sys.executable, "-m", "vccasync.cli", *args],
        input=task, env=cli_env(None), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
