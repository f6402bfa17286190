"""End to end against the project's fake VCC API on loopback: exact sets through faults."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aioresponses import aioresponses

from vccasync import InvalidRequestError, NotFoundError, ResponseValidationError, VccClient, to_api
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate

from .conftest import API, FAST, api_shape, client_for, token_answer

START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def dataset() -> Any:
    # 130 days, a 1,200-interaction tie, interactions on every 7-day edge and on the end instant
    return generate(
        DatasetSpec(
            seed=7,
            start=START,
            days=130,
            per_day=150,
            tie_size=1200,
            tie_at=START + timedelta(days=40, hours=9),
        )
    )


@pytest.fixture
async def fake(dataset: Any) -> AsyncIterator[FakeVccServer]:
    async with FakeVccServer(dataset) as server:
        yield server


async def collect(vcc: VccClient, start: Any, end: Any, **filters: Any) -> list[dict[str, Any]]:
    return [to_api(it) async for it in vcc.interactions(start, end, **filters)]


@pytest.mark.slow
async def test_120_days_through_faults_expiring_tokens_and_a_tight_rate_limit(dataset: Any) -> None:
    faults = FaultConfig(rate=0.10, seed=3, stall_seconds=1.5, retry_after="0.3")
    config = FakeConfig(
        token_ttl=2.0, faults=faults, rate_limit_per_minute=40, rate_limit_window=1.0
    )
    start, end = START + timedelta(days=3, hours=5), START + timedelta(days=125, minutes=7)
    async with FakeVccServer(dataset, config) as fake:
        async with client_for(
            fake, requests_per_minute=3000, timeout=0.5, max_attempts=8, concurrency=6
        ) as vcc:
            got = await collect(vcc, start, end, limit=60)
            refreshes = vcc.session.tokens.refreshes
        stats = fake.stats
    want = [api_shape(i) for i in dataset.expected(start, end)]
    assert len(want) > 15000
    assert [g["guid"] for g in got] == [w["guid"] for w in want]  # exact, ordered, no duplicate
    assert got == want  # every field
    assert set(stats.faults) >= {"500", "502-html", "drop", "truncate", "stall", "429", "bad-json"}
    assert refreshes >= 3


async def test_range_edges_under_both_readings_of_end(dataset: Any) -> None:
    start, end = START, START + timedelta(days=28)  # end is a 7-day edge with an interaction on it
    want = [api_shape(i) for i in dataset.expected(start, end)]
    assert any(w["start"] == "2025-01-29T00:00:00Z" for w in want)
    assert any(w["start"] == "2025-01-08T00:00:00Z" for w in want)
    for inclusive in (True, False):
        server = FakeVccServer(dataset, FakeConfig(end_inclusive=inclusive))
        async with server as fake, client_for(fake) as vcc:
            assert await collect(vcc, start, end) == want


async def test_tie_larger_than_a_page_is_followed(fake: FakeVccServer, dataset: Any) -> None:
    tie = START + timedelta(days=40, hours=9)
    async with client_for(fake) as vcc:
        got = await collect(vcc, tie, tie + timedelta(seconds=1))
    assert sum(g["start"] == "2025-02-10T09:00:00Z" for g in got) >= 1100
    assert got == [api_shape(i) for i in dataset.expected(tie, tie + timedelta(seconds=1))]


@pytest.mark.parametrize(
    "filters",
    [
        {"direction": "inbound"},
        {"direction": "outbound"},
        {"connect_from": "44"},
        {"connect_from": "0"},
        {"connect_to": "1"},
        {"connect_from": "jo"},
        {"handling_agent_id": "1342"},
        {"direction": "inbound", "connect_from": "4", "handling_agent_id": "1342"},
    ],
)
async def test_each_filter_alone_and_combined(
    fake: FakeVccServer, dataset: Any, filters: dict[str, str]
) -> None:
    start, end = START + timedelta(days=1), START + timedelta(days=20)
    async with client_for(fake) as vcc:
        got = await collect(vcc, start, end, **filters)
    want = [api_shape(i) for i in dataset.expected(start, end, **filters)]
    assert got == want


async def test_windows_run_at_the_same_time(dataset: Any) -> None:
    async with FakeVccServer(dataset, FakeConfig(page_latency=0.2)) as fake:
        async with client_for(fake, concurrency=4) as vcc:
            got = await collect(vcc, START, START + timedelta(days=56))
            assert vcc.stats.max_in_flight >= 3
        assert fake.stats.max_in_flight >= 3  # seen by the server, not only counted by us
    assert len(got) == len(dataset.expected(START, START + timedelta(days=56)))


async def test_unordered_and_page_iteration(fake: FakeVccServer, dataset: Any) -> None:
    start, end = START, START + timedelta(days=30)
    async with client_for(fake) as vcc:
        unordered = [it.guid async for it in vcc.interactions(start, end, ordered=False, limit=300)]
        pages = [page async for page in vcc.interactions(start, end, limit=300).pages()]
    want = [i["guid"] for i in dataset.expected(start, end)]
    assert sorted(unordered) == sorted(want) and len(unordered) == len(want)
    assert [it.guid for page in pages for it in page.items] == want
    spawned = sum(len(page.spawned) for page in pages)  # sub-windows of dense windows
    assert sum(page.last for page in pages) == 5 + spawned  # five windows + sub-windows, once


async def test_resume_plan_continues_a_window(fake: FakeVccServer, dataset: Any) -> None:
    start, end = START, START + timedelta(days=10)
    async with client_for(fake) as vcc:
        search = vcc.interactions(start, end, limit=400)
        pages = [page async for page in search.pages()]
        first = pages[0]
        assert not first.last
        rest = vcc.interactions(
            start, end, limit=400, plan=[(first.window, first.next_token), *search.plan[1:]]
        )
        resumed = [it.guid async for it in rest]
    assert [it.guid for it in first.items] + resumed == [
        i["guid"] for i in dataset.expected(start, end)
    ]


async def test_get_one_and_not_found(fake: FakeVccServer, dataset: Any) -> None:
    item = dataset.expected(START, START + timedelta(days=1))[0]
    async with client_for(fake) as vcc:
        assert to_api(await vcc.interaction(item["guid"])) == api_shape(item)
        with pytest.raises(NotFoundError):
            await vcc.interaction("00000000-0000-0000-0000-000000000000")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((START, START - timedelta(seconds=1)), "before start"),
        (("2025-13-01", START), "start must be an ISO 8601"),
        ((START, START, {"direction": "sideways"}), "direction"),
        ((START, START, {"connect_from": "1" * 51}), "1 to 50"),
        ((START, START, {"connect_to": ""}), "1 to 50"),
        ((START, START, {"connect_from": 1473}), "string"),
        ((START, START, {"limit": 0}), "limit"),
        ((START, START, {"limit": 1001}), "limit"),
    ],
)
async def test_invalid_searches_send_nothing(
    fake: FakeVccServer, args: tuple[Any, ...], message: str
) -> None:
    filters = args[2] if len(args) > 2 else {}
    async with client_for(fake) as vcc:
        with pytest.raises(InvalidRequestError, match=message):
            vcc.interactions(args[0], args[1], **filters)
    assert fake.stats.requests == 0 and fake.stats.token_requests == 0


async def test_naive_datetimes_are_utc(fake: FakeVccServer, dataset: Any) -> None:
    async with client_for(fake) as vcc:
        naive = await collect(vcc, datetime(2025, 1, 2), "2025-01-03T00:00:00")
    assert naive == [
        api_shape(i) for i in dataset.expected(START + timedelta(days=1), START + timedelta(days=2))
    ]


async def test_stopping_early_cancels_the_fan_out(dataset: Any) -> None:
    server = FakeVccServer(dataset, FakeConfig(page_latency=0.05))
    async with server as fake, client_for(fake) as vcc:
        search = vcc.interactions(START, START + timedelta(days=120), limit=100)
        async with asyncio.timeout(10):
            pages = search.pages()
            async for _ in pages:
                break
            await pages.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
        settled = fake.stats.search_requests
        await asyncio.sleep(0.3)
        assert fake.stats.search_requests == settled  # nothing runs on after the close


async def test_repeated_continuation_token_ends_the_window(mocked: aioresponses) -> None:
    token_answer(mocked)
    page = {"items": [], "meta": {"nextContinuationToken": "same"}}
    mocked.get(re.compile(re.escape(API) + r"/interactions\?.*"), payload=page, repeat=True)
    async with VccClient(client_id="i", client_secret="s", **FAST) as vcc:
        with pytest.raises(ResponseValidationError, match="repeated a continuation token"):
            async with asyncio.timeout(5):
                await collect(vcc, START, START + timedelta(days=1))


async def test_dot_only_guids_stay_one_path_segment(fake: FakeVccServer) -> None:
    async with client_for(fake) as vcc:
        for guid in ("..", ".", "a/b"):
            with pytest.raises(NotFoundError) as info:
                await vcc.interaction(guid)
            assert "/interactions/" + guid.replace(".", "%2E").replace("/", "%2F") in str(
                info.value
            )
