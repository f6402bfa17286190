"""Backfill plans as data, credentials per account, and one task run into PostgreSQL."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from vccasync import InvalidRequestError, VccClient, make_query
from vccasync._windows import RESOLUTION
from vccasync.distributed._accounts import credentials, env_prefix
from vccasync.distributed._tasks import Task, plan, plan_search, run_task, share, task_from_json
from vccasync.fake import DatasetSpec, FakeVccServer, generate

START = datetime(2025, 1, 1, tzinfo=UTC)


def test_months_cover_the_range_without_overlap() -> None:
    tasks = plan("2025-01-15T10:00:00Z", "2025-04-03T12:00:00.5Z", accounts=["a", "b"])
    assert [t.account for t in tasks] == ["a"] * 4 + ["b"] * 4
    a = tasks[:4]
    assert a[0].start == datetime(2025, 1, 15, 10, tzinfo=UTC)
    assert [t.start.month for t in a] == [1, 2, 3, 4] and all(t.start.day == 1 for t in a[1:])
    assert all(x.end + RESOLUTION == y.start for x, y in itertools.pairwise(a))
    assert a[-1].end == datetime(2025, 4, 3, 12, 0, 0, 500000, tzinfo=UTC)
    assert len({t.id for t in a}) == 4 and [t.id for t in a] == [t.id for t in tasks[4:]]


@pytest.mark.parametrize(
    ("split_by", "count", "second"),
    [("day", 10, datetime(2025, 1, 2, tzinfo=UTC)), ("week", 2, datetime(2025, 1, 6, tzinfo=UTC))],
)
def test_days_and_weeks(split_by: Any, count: int, second: datetime) -> None:
    tasks = plan(START, START + timedelta(days=9, hours=5), accounts=["a"], split_by=split_by)
    assert len(tasks) == count and tasks[1].start == second  # weeks begin on Monday
    assert plan(START, START + timedelta(days=90), accounts=["a"], split_by="none")[0].end == (
        START + timedelta(days=90)
    )


def test_rate_shares_keep_one_request_per_window_of_slack() -> None:
    assert share(160, 4) == 39  # 160/4, less one request per minute
    assert share(600, 2, window=2.0) == 270  # 20 per 2 s: 9 per task per window
    with pytest.raises(InvalidRequestError, match="too small"):
        share(4, 4)
    tasks = plan(START, START + timedelta(days=70), accounts=["a", "b"], parallel=4,
                 requests_per_minute={"a": 160, "b": 61})  # fmt: skip
    # three months: three tasks at once at most, so each gets a third
    assert {(t.account, t.parallel, round(t.requests_per_minute or 0, 2)) for t in tasks} == {
        ("a", 3, 52.33),
        ("b", 3, 19.33),
    }


def test_task_json_round_trip_and_bad_input() -> None:
    filters = {"direction": "inbound", "connect_from": "0147", "connect_to": None}
    tasks = plan(START, START + timedelta(days=40), accounts=["acme-uk"], filters=filters)
    for task in tasks:
        text = json.dumps(task.to_json())
        assert "secret" not in text and task_from_json(text) == task
    assert tasks[0].to_json() == {
        "account": "acme-uk",
        "start": "2025-01-01T00:00:00Z",
        "end": "2025-01-31T23:59:59.999Z",
        "filters": {"direction": "inbound", "connect_from": "0147"},
        "requests_per_minute": 79.0,
        "parallel": 2,
    }
    assert tasks[0].id == (
        "2025-01-01T00:00:00Z/2025-01-31T23:59:59.999Z?connect_from=0147&direction=inbound"
    )
    bad = [
        ("{", "must be JSON"),
        ("[]", "JSON object"),
        ('{"account": "a", "start": "x", "end": "2025-01-01"}', "valid task"),
        ('{"account": "a", "start": "2025-01-02", "end": "2025-01-01"}', "before start"),
        ('{"account": "a", "start": "2025-01-01", "end": "2025-01-02", "x": 1}', "unknown task"),
        (
            '{"account": "a", "start": "2025-01-01", "end": "2025-01-02", "filters": {"a": "1"}}',
            "unknown filters",
        ),
        ('{"account": "", "start": "2025-01-01", "end": "2025-01-02"}', "account"),
    ]
    for text, message in bad:
        with pytest.raises(InvalidRequestError, match=message):
            task_from_json(text)
    with pytest.raises(InvalidRequestError, match="split_by"):
        plan(START, START, accounts=["a"], split_by="year")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="distinct"):
        plan(START, START, accounts=["a", "a"])


def test_credentials_from_the_environment_then_a_file(tmp_path: Path) -> None:
    assert env_prefix("acme-uk.2") == "VCC_ACME_UK_2_"
    env = {
        "VCC_ACME_UK_CLIENT_ID": "id1",
        "VCC_ACME_UK_CLIENT_SECRET": "s1",
        "VCC_ACME_UK_REGION": "nam",
    }
    assert credentials("acme-uk", environ=env) == {
        "client_id": "id1",
        "client_secret": "s1",
        "region": "nam",
    }
    path = tmp_path / "accounts.toml"
    path.write_text('[accounts.other]\nclient_id = "id2"\nclient_secret = "s2"\n')
    found = credentials("other", environ={"VCCASYNC_ACCOUNTS": str(path)})
    assert found == {"client_id": "id2", "client_secret": "s2"}
    with pytest.raises(InvalidRequestError, match="VCC_NOBODY_CLIENT_ID") as info:
        credentials("nobody", environ=env, accounts_file=path)
    assert "s1" not in str(info.value)
    path.write_text('[accounts.other]\nclient_id = "id2"\nclient_secret = "s2"\ntoken = "x"\n')
    with pytest.raises(InvalidRequestError, match="unknown keys: token"):
        credentials("other", environ={}, accounts_file=path)
    path.write_text("[accounts.other\n")
    with pytest.raises(InvalidRequestError, match="not valid TOML"):
        credentials("other", environ={}, accounts_file=path)


async def test_run_task_writes_its_range_and_resumes(pg_dsn: str) -> None:
    dataset = generate(DatasetSpec(seed=5, start=START, days=40, per_day=20))
    async with FakeVccServer(dataset) as fake:
        creds = {
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "api_url": fake.api_url,
            "auth_url": fake.auth_url,
        }
        tasks = plan(START, START + timedelta(days=40), accounts=["acme"],
                     filters={"direction": "outbound"}, requests_per_minute=6000)  # fmt: skip
        results = [
            await run_task(t, pg_dsn, credentials_for=lambda _: creds, page_size=30) for t in tasks
        ]
        assert [r.task for r in results] == [t.id for t in tasks]
        again = await run_task(tasks[0], pg_dsn, credentials_for=lambda _: creds, page_size=30)
        # another page size is another search: fetched afresh, upserted onto the same rows
        other = await run_task(tasks[0], pg_dsn, credentials_for=lambda _: creds, page_size=50)
        with pytest.raises(InvalidRequestError, match="postgresql://"):
            await run_task(tasks[0], "out.jsonl", credentials_for=lambda _: creds)
    want = {
        i["guid"] for i in dataset.expected(START, START + timedelta(days=40), direction="outbound")
    }
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch("SELECT guid, account, direction FROM interactions")
    finally:
        await conn.close()
    assert {r["guid"] for r in rows} == want and len(rows) == len(want)
    assert {(r["account"], r["direction"]) for r in rows} == {("acme", "outbound")}
    assert sum(r.written for r in results) == len(want) and results[0].requests > 1
    assert (again.written, again.requests) == (0, 0)
    assert other.written == results[0].written and other.requests > 0


def test_a_task_without_a_rate_is_allowed_but_validated() -> None:
    task = Task(account="a", start=START, end=START + timedelta(days=1))
    assert task.requests_per_minute is None and task.parallel == 1
    with pytest.raises(InvalidRequestError, match="positive"):
        Task(account="a", start=START, end=START, requests_per_minute=0)


async def test_one_query_from_plan_to_search() -> None:
    query = make_query(START, START + timedelta(days=40), direction="inbound", connect_to="02")
    tasks = plan_search(query, accounts=["a"], split_by="month")
    assert tasks == plan(
        START, START + timedelta(days=40), accounts=["a"],
        filters={"direction": "inbound", "connect_to": "02"},
    )  # fmt: skip
    first = tasks[0].search_query(limit=50)
    end = START + timedelta(days=31) - RESOLUTION
    assert first == make_query(START, end, direction="inbound", connect_to="02", limit=50)
    settings = {"client_id": "id", "client_secret": "secret", "api_url": "http://127.0.0.1:9/x"}
    async with VccClient(**settings) as vcc:  # nothing is sent
        assert vcc.search(first).query == first
        wrapped = vcc.interactions(START, end, direction="inbound", connect_to="02", limit=50)
        assert wrapped.query == first
        with pytest.raises(InvalidRequestError, match="SearchQuery"):
            vcc.search({"start": "2025-01-01"})  # type: ignore[arg-type]
