"""The PostgreSQL sink against a real server: upserts, atomic checkpoints, concurrent writers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import attrs
import pytest

from vccasync import VccClient, VccError, Window
from vccasync._query import make_query
from vccasync._windows import Page
from vccasync.fake import DatasetSpec, FakeVccServer, generate
from vccasync.stores._output import open_sink
from vccasync.stores._postgres import PostgresSink, is_postgres_url, redact_url

from .conftest import api_shape, client_for

START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def dataset() -> Any:
    return generate(DatasetSpec(seed=11, start=START, days=20, per_day=60))


@pytest.fixture
async def fake(dataset: Any) -> AsyncIterator[FakeVccServer]:
    async with FakeVccServer(dataset) as server:
        yield server


async def backfill(
    vcc: VccClient, sink: PostgresSink, task: str, start: datetime, end: datetime, **kw: Any
) -> int:
    """Run one search into ``sink`` from its checkpoint; the number of windows it finished."""
    windows = vcc.interactions(start, end).windows
    todo = await sink.begin(task, {"start": str(start), "end": str(end)}, windows)
    finished = 0
    async for page in vcc.interactions(
        start, end, plan=todo, ordered=False, limit=25, **kw
    ).pages():
        await sink.write(task, page)
        finished += page.last
    return finished


async def stored(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM interactions ORDER BY start, guid")
        content = await conn.fetch("SELECT * FROM content ORDER BY guid, content_key")
        windows = await conn.fetch("SELECT * FROM vccasync_windows")
        tasks = await conn.fetch("SELECT * FROM vccasync_tasks")
    finally:
        await conn.close()
    return {"rows": rows, "content": content, "windows": windows, "tasks": tasks}


async def test_a_search_lands_once_with_every_column(
    fake: FakeVccServer, dataset: Any, pg_dsn: str
) -> None:
    start, end = START + timedelta(days=2, hours=3), START + timedelta(days=17)
    want = [api_shape(i) for i in dataset.expected(start, end)]
    async with client_for(fake) as vcc, PostgresSink(pg_dsn, account="acme") as sink:
        finished = await backfill(vcc, sink, "t1", start, end)
        assert finished >= 3  # 7 days, 7 days, 21 hours, and any sub-windows split off
        assert sink.written == len(want)
    got = await stored(pg_dsn)
    assert [r["guid"] for r in got["rows"]] == [w["guid"] for w in want]
    assert [json.loads(r["data"]) for r in got["rows"]] == want
    first, row = want[0], got["rows"][0]
    assert row["account"] == "acme"
    assert row["start"] == datetime.fromisoformat(first["start"])
    assert (row["connect_from"], row["connect_to"]) == (first["connectFrom"], first["connectTo"])
    assert row["direction"] == first["direction"]
    assert row["agents"] == [a["id"] for a in first["handlingAgents"]]
    keys = [(w["guid"], c["contentKey"]) for w in want for c in w["content"]]
    assert sorted(keys) == [(c["guid"], c["content_key"]) for c in got["content"]]
    by_key = {(c["guid"], c["content_key"]): c for c in got["content"]}
    sample = want[5]["content"][0]
    stored_content = by_key[(want[5]["guid"], sample["contentKey"])]
    assert stored_content["type"] == sample["type"]
    assert stored_content["content_length"] == sample.get("contentLength")
    assert got["windows"] == [] and got["tasks"][0]["finished_at"] is not None
    assert got["tasks"][0]["written"] == len(want)
    assert got["tasks"][0]["windows_total"] == finished  # planned and spawned windows

    # a rerun of the finished task sends no search and writes nothing
    fake.reset_stats()
    async with client_for(fake) as vcc, PostgresSink(pg_dsn, account="acme") as sink:
        assert await backfill(vcc, sink, "t1", start, end) == 0
    assert fake.stats.search_requests == 0
    assert len((await stored(pg_dsn))["rows"]) == len(want)


async def test_a_killed_run_resumes_from_its_last_page(
    fake: FakeVccServer, dataset: Any, pg_dsn: str
) -> None:
    start, end = START, START + timedelta(days=20)
    want = {i["guid"] for i in dataset.expected(start, end)}
    # one window at a time leaves no budget to split with: pages end mid-window, with tokens
    async with client_for(fake, concurrency=1) as vcc, PostgresSink(pg_dsn) as sink:
        windows = vcc.interactions(start, end).windows
        todo = await sink.begin("t", {}, windows)
        pages = vcc.interactions(start, end, plan=todo, limit=25).pages()
        for _ in range(9):  # then the process "dies": no more pages, no goodbye
            await sink.write("t", await anext(pages))
        await pages.aclose()
    middle = await stored(pg_dsn)
    assert 0 < len(middle["rows"]) < len(want)
    assert any(w["token"] for w in middle["windows"])  # resumes mid-window, not from scratch
    fake.reset_stats()
    async with client_for(fake) as vcc, PostgresSink(pg_dsn) as sink:
        todo = await sink.begin("t", {}, windows)
        assert 0 < len(todo) <= len(windows)
        async for page in vcc.interactions(start, end, plan=todo, limit=25).pages():
            await sink.write("t", page)
    got = await stored(pg_dsn)
    assert {r["guid"] for r in got["rows"]} == want and len(got["rows"]) == len(want)
    assert fake.stats.search_requests < len(want) / 25  # the rest only, not everything again


async def test_rows_and_checkpoint_commit_together_or_not_at_all(
    fake: FakeVccServer, pg_dsn: str
) -> None:
    async with client_for(fake, concurrency=1) as vcc, PostgresSink(pg_dsn) as sink:
        windows = vcc.interactions(START, START + timedelta(days=3)).windows
        await sink.begin("t", {}, windows)
        pages = vcc.interactions(START, START + timedelta(days=3), limit=25).pages()
        page = await anext(pages)
        await pages.aclose()
        assert page.items and not page.last
        await sink.connection.execute(
            """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
               $$BEGIN RAISE EXCEPTION 'disk full'; END$$;
               CREATE TRIGGER refuse BEFORE UPDATE ON vccasync_windows
               FOR EACH ROW EXECUTE FUNCTION refuse();"""
        )
        with pytest.raises(asyncpg.RaiseError, match="disk full"):
            await sink.write("t", page)
    got = await stored(pg_dsn)
    assert got["rows"] == [] and got["content"] == []
    assert [(w["window_key"], w["token"]) for w in got["windows"]] == [(windows[0].key, None)]


async def test_concurrent_writers_of_overlapping_searches(
    fake: FakeVccServer, dataset: Any, pg_dsn: str
) -> None:
    spans = [
        (START, START + timedelta(days=12)),
        (START + timedelta(days=5), START + timedelta(days=20)),
    ]

    async def one(task: str, start: datetime, end: datetime) -> None:
        async with client_for(fake) as vcc, PostgresSink(pg_dsn, account="acme") as sink:
            await backfill(vcc, sink, task, start, end)

    await asyncio.gather(*(one(f"t{n}", a, b) for n, (a, b) in enumerate(spans)))
    want = {i["guid"] for a, b in spans for i in dataset.expected(a, b)}
    got = await stored(pg_dsn)
    assert {r["guid"] for r in got["rows"]} == want and len(got["rows"]) == len(want)


async def test_content_follows_the_latest_version_of_an_interaction(
    fake: FakeVccServer, pg_dsn: str
) -> None:
    async with client_for(fake) as vcc, PostgresSink(pg_dsn) as sink:
        window = Window(START, START + timedelta(days=1))
        await sink.begin("t", {}, [window])
        item = await anext(aiter(vcc.interactions(START, START + timedelta(days=1))))
        assert len(item.content) >= 1
        await sink.write("t", Page(window, [item], "tok"))
        changed = attrs.evolve(item, content=item.content[:0], connect_to="0999")
        await sink.write("t", Page(window, [changed], None))
    got = await stored(pg_dsn)
    assert [(r["guid"], r["connect_to"]) for r in got["rows"]] == [(item.guid, "0999")]
    assert got["content"] == [] and got["windows"] == []


async def test_a_task_name_is_bound_to_its_query(pg_dsn: str) -> None:
    window = Window(START, START + timedelta(days=1))
    async with PostgresSink(pg_dsn) as sink:
        assert await sink.begin("t", {"q": 1}, [window]) == [(window, None)]
        assert await sink.begin("t", {"q": 1}, [window]) == [(window, None)]
        with pytest.raises(VccError, match="another query"):
            await sink.begin("t", {"q": 2}, [window])
    async with PostgresSink(pg_dsn, account="other") as sink:  # accounts are separate
        assert await sink.begin("t", {"q": 2}, [window]) == [(window, None)]


async def test_a_search_resumes_its_own_page_size_only(pg_dsn: str, fake: FakeVccServer) -> None:
    query = make_query(START, START + timedelta(days=3), limit=25)
    async with client_for(fake) as vcc:
        async with await open_sink(pg_dsn, query, account="acme") as sink:
            async for page in vcc.search(query, ordered=False, plan=sink.checkpoint.plan()).pages():
                await sink.write(page)
        written = sink.checkpoint.written
        assert sink.checkpoint.done and written == len(
            fake.dataset.expected(query.start, query.end)
        )
        async with await open_sink(pg_dsn, query, account="acme") as again:
            assert again.checkpoint.done and again.checkpoint.written == written
        other = attrs.evolve(query, limit=40)  # the same range, another page size
        async with await open_sink(pg_dsn, other, account="acme") as fresh:
            assert not fresh.checkpoint.done and fresh.checkpoint.written == 0
            assert fresh.target == redact_url(pg_dsn)


async def test_unreachable_database_is_one_clear_error() -> None:
    url = "postgresql://me:s3cret@127.0.0.1:1/db"
    with pytest.raises(VccError, match="cannot connect") as info:
        async with PostgresSink(url):
            pass
    assert "s3cret" not in str(info.value) and "***" in str(info.value)


def test_urls() -> None:
    assert is_postgres_url("postgresql://h/db") and is_postgres_url("postgres://h/db")
    assert not is_postgres_url("out.sqlite")
    assert redact_url("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
