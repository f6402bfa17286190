"""``vccasync interactions`` as a subprocess against the fake API on loopback."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync._counts import count
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate, running_in_thread

from .cli_helpers import (
    chronological,
    cli_env,
    read_output,
    read_sqlite,
    run_cli,
    start_cli,
    stored_checkpoint,
)
from .conftest import api_shape

START = datetime(2025, 1, 1, tzinfo=UTC)
FAST = ["--requests-per-minute", "60000", "--quiet"]
RANGE = ["--start", "2025-01-02", "--end", "2025-01-16"]  # plain dates: whole UTC days
RANGE_START = START + timedelta(days=1)
RANGE_END = START + timedelta(days=16) - timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def dataset() -> Any:
    # interactions on every 7-day edge (2025-01-08, 01-15) and at midnight of 01-16 (excluded)
    return generate(DatasetSpec(seed=5, start=START, days=30, per_day=120))


@pytest.fixture(scope="module")
def server(dataset: Any) -> Iterator[FakeVccServer]:
    with running_in_thread(dataset) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeVccServer) -> FakeVccServer:
    server.reset_stats()
    return server


def expected(dataset: Any, **filters: str) -> list[dict[str, Any]]:
    return [api_shape(i) for i in dataset.expected(RANGE_START, RANGE_END, **filters)]


FILTERS = [
    {},
    {"direction": "inbound"},
    {"direction": "outbound"},
    {"connect_from": "0"},
    {"connect_to": "1"},
    {"handling_agent_id": "1342"},
    {"direction": "inbound", "connect_from": "4", "handling_agent_id": "1342"},
]


def filter_args(filters: dict[str, str]) -> list[str]:
    flags = {
        "direction": "--direction",
        "connect_from": "--connect-from",
        "connect_to": "--connect-to",
        "handling_agent_id": "--agent-id",
    }
    return [part for name, value in filters.items() for part in (flags[name], value)]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: "+".join(f) or "all")
@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_outputs_hold_the_exact_set_for_each_filter(
    fake: FakeVccServer, dataset: Any, tmp_path: Path, filters: dict[str, str], suffix: str
) -> None:
    out = tmp_path / f"out{suffix}"
    done = run_cli(
        ["interactions", *RANGE, *filter_args(filters), "-o", str(out), *FAST], cli_env(fake)
    )
    assert done.returncode == 0, done.stderr
    want = expected(dataset, **filters)
    assert want, "the filter must select something"
    assert read_output(out) == want  # the API's values, each once
    assert f"complete: {count(len(want), 'interaction')} in" in done.stderr


def test_sqlite_columns_and_content_table(
    fake: FakeVccServer, dataset: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out.db"
    done = run_cli(["interactions", *RANGE, "-o", str(out), *FAST], cli_env(fake))
    assert done.returncode == 0, done.stderr
    want = {i["guid"]: i for i in expected(dataset)}
    with sqlite3.connect(out) as db:
        rows = db.execute(
            "SELECT guid, start, connect_from, connect_to, direction, handling_agents"
            " FROM interactions"
        ).fetchall()
        content = db.execute(
            "SELECT guid, content_key, type, content_type, content_length, json FROM content"
        ).fetchall()
    assert len(rows) == len(want)
    for guid, start, frm, to, direction, agents in rows:
        item = want[guid]
        assert datetime.fromisoformat(start) == datetime.fromisoformat(item["start"])
        assert (frm, to, direction) == (
            item.get("connectFrom"), item.get("connectTo"), item.get("direction"),
        )  # fmt: skip
        assert json.loads(agents) == [a["id"] for a in item["handlingAgents"]]
    assert sorted(c[:5] for c in content) == sorted(
        (guid, c["contentKey"], c["type"], c.get("contentType"), c.get("contentLength"))
        for guid, item in want.items()
        for c in item["content"]
    )
    assert all(json.loads(c[5])["contentKey"] == c[1] for c in content)


def test_stdout_sink(fake: FakeVccServer, dataset: Any) -> None:
    done = run_cli(["interactions", *RANGE, "-o", "-", *FAST], cli_env(fake))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert chronological(lines) == expected(dataset)


def test_rerun_of_a_finished_run_does_nothing(fake: FakeVccServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    args = ["interactions", *RANGE, "-o", str(out), *FAST]
    assert run_cli(args, cli_env(fake)).returncode == 0
    before = out.read_bytes()
    fake.reset_stats()
    again = run_cli(args, cli_env(fake))
    assert again.returncode == 0
    assert "already complete" in again.stderr
    assert fake.stats.requests == 0 and fake.stats.token_requests == 0
    assert out.read_bytes() == before


NO_CREDENTIALS = {"VCC_CLIENT_ID": "", "VCC_CLIENT_SECRET": ""}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--start", "2025-01-05", "--end", "2025-01-04"], {}, "is before start"),
        (["--start", "2025-01-05T10:00:00Z", "--end", "2025-01-05T09:59:59Z"], {}, "before"),
        (["--start", "yesterday", "--end", "2025-01-04"], {}, "not an ISO 8601"),
        (["--start", "2025-02-30", "--end", "2025-03-04"], {}, "not a valid date"),
        (["--start", "2025-01-01T10:00", "--end", "2025-01-04"], {}, "no time zone"),
        ([*RANGE, "--direction", "sideways"], {}, "invalid choice"),
        ([*RANGE, "--connect-from", "1" * 51], {}, "1 to 50 characters"),
        ([*RANGE, "--connect-to", ""], {}, "1 to 50 characters"),
        ([*RANGE, "--concurrency", "0"], {}, "must be positive"),
        (RANGE, NO_CREDENTIALS, "missing credentials"),
        (RANGE, {"VCC_REGION": "mars"}, "region must be one of"),
        (RANGE, {"VCC_API_URL": "http://example.com/api"}, "must use https"),
        (["--end", "2025-01-04"], {}, "required: --start"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_sends_nothing(
    fake: FakeVccServer, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    out = tmp_path / "out.jsonl"
    done = run_cli(["interactions", *args, "-o", str(out), *FAST], cli_env(fake, **env))
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert fake.stats.requests == 0 and fake.stats.token_requests == 0
    assert not out.exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing-folder/out.jsonl", "cannot write"),
        ("missing-folder/out.sqlite", "cannot write"),
        ("a-folder.jsonl", "cannot write"),
        ("out.csv", "must end with"),
        ("not-a-database.sqlite", "is not an SQLite database"),
        ("foreign.jsonl", "was not written by vccasync"),
        ("foreign.db", "did not create"),
    ],
)
def test_unwritable_or_foreign_output_is_refused(
    fake: FakeVccServer, tmp_path: Path, output: str, message: str
) -> None:
    (tmp_path / "a-folder.jsonl").mkdir()
    (tmp_path / "not-a-database.sqlite").write_text("hello, not SQLite\n" * 20)
    (tmp_path / "foreign.jsonl").write_text('{"mine": true}\n')
    with sqlite3.connect(tmp_path / "foreign.db") as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    done = run_cli(["interactions", *RANGE, "-o", str(tmp_path / output), *FAST], cli_env(fake))
    assert (done.returncode, len(done.stderr.strip().splitlines())) == (2, 1), done.stderr
    assert message in done.stderr
    assert fake.stats.requests == 0 and fake.stats.token_requests == 0
    assert (tmp_path / "foreign.jsonl").read_text() == '{"mine": true}\n'


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_same_output_with_another_query_needs_overwrite(
    fake: FakeVccServer, dataset: Any, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"out{suffix}"
    first = ["interactions", "--start", "2025-01-02", "--end", "2025-01-03", "-o", str(out)]
    assert run_cli([*first, *FAST], cli_env(fake)).returncode == 0
    fake.reset_stats()
    other = ["interactions", *RANGE, "--direction", "inbound", "-o", str(out), *FAST]
    refused = run_cli(other, cli_env(fake))
    assert refused.returncode == 2
    assert "holds a different backfill" in refused.stderr and "--overwrite" in refused.stderr
    assert fake.stats.requests == 0
    replaced = run_cli([*other, "--overwrite"], cli_env(fake))
    assert replaced.returncode == 0, replaced.stderr
    assert read_output(out) == expected(dataset, direction="inbound")


def test_wrong_credentials_exit_3_without_the_secret(fake: FakeVccServer, tmp_path: Path) -> None:
    secret = "not-the-secret-4711"
    done = run_cli(
        ["interactions", *RANGE, "-o", str(tmp_path / "out.jsonl"), *FAST],
        cli_env(fake, VCC_CLIENT_SECRET=secret),
        timeout=20,
    )
    assert done.returncode == 3
    assert "authentication failed" in done.stderr and "VCC_CLIENT_SECRET" in done.stderr
    assert secret not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert fake.stats.search_requests == 0
    assert fake.stats.token_requests == 1  # refused credentials are not retried


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_network_loss_exits_1_and_a_rerun_continues(
    dataset: Any, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"out{suffix}"
    args = [
        "interactions", "--start", "2025-01-01", "--end", "2025-01-30", "-o", str(out),
        "--max-attempts", "2", "--concurrency", "1", *FAST,
    ]  # fmt: skip
    config = FakeConfig(page_latency=0.3)
    with running_in_thread(dataset, config) as first:
        port, env = first.port, cli_env(first)
        process = start_cli(args, env)
        deadline = time.monotonic() + 30
        while (stored_checkpoint(out) or {}).get("written", 0) == 0:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
    _, stderr = process.communicate(timeout=60)  # the API is gone: retries run out
    assert process.returncode == 1, stderr
    assert b"rerun the same command to resume" in stderr and b"Traceback" not in stderr
    kept = stored_checkpoint(out)
    assert kept is not None and kept["written"] > 0 and kept["pending"]
    with running_in_thread(dataset, config, port=port) as second:
        done = run_cli(args, env)
        assert done.returncode == 0, done.stderr
        assert "resuming" in done.stderr
        full_windows = 5  # 2025-01-01 .. 2025-01-30: five 7-day windows, each >= 1 request
        assert second.stats.search_requests < full_windows
    want = [
        api_shape(i)
        for i in dataset.expected(START, START + timedelta(days=30) - timedelta(milliseconds=1))
    ]
    assert read_output(out) == want


def test_demo_needs_no_credentials(tmp_path: Path) -> None:
    out = tmp_path / "demo.sqlite"
    env = cli_env(None, VCC_CLIENT_ID="ignored", VCC_API_URL="https://nowhere.invalid")
    args = ["interactions", "--demo", "--start", "2025-03-30", "--end", "2025-03-31"]
    done = run_cli([*args, "-o", str(out), *FAST], env)
    assert done.returncode == 0, done.stderr
    rows = read_sqlite(out)
    assert rows and all("2025-03-30" <= r["start"] < "2025-04-01" for r in rows)
    assert len({r["guid"] for r in rows}) == len(rows)
