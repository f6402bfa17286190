"""The fan-out's hand-over of pages, against a scripted session (no network, no clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vccasync._config import ClientConfig
from vccasync._instants import format_instant
from vccasync._models import Interaction
from vccasync._query import make_query
from vccasync._search import InteractionSearch
from vccasync._search.fanout import windows_wanted
from vccasync._windows import Page, Window
from vccasync.stores._checkpoint import Checkpoint, query_identity

START = datetime(2025, 1, 1, tzinfo=UTC)
A = Window(START, START + timedelta(days=1))
B = Window(A.end, A.end + timedelta(days=1), closed=True)
LIMIT = 10


def at(moment: datetime, name: str) -> Interaction:
    return Interaction(guid=name, start=moment)


class ScriptedSession:
    """Answers searches from a script: window A's first page is full and dense (so it splits),
    window B has four one-item pages, a sub-window of A answers one item once ``release``."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.release = asyncio.Event()

    async def get(
        self, path: str, params: Mapping[str, str], parse: Callable[[bytes], Any]
    ) -> tuple[list[Interaction], str | None]:
        start, token = params["start"], params.get("continuationToken")
        if start == format_instant(A.start):
            assert token is None, "a split window's chain is not followed"
            for _ in range(5):  # A answers after B has filled the queue
                await asyncio.sleep(0)
            return [at(A.start + timedelta(minutes=k), f"a{k}") for k in range(LIMIT)], "a1"
        if start == format_instant(B.start):
            await asyncio.sleep(0)
            k = int(token[1:]) if token else 0
            return [at(B.start + timedelta(minutes=k), f"b{k}")], f"b{k + 1}" if k < 3 else None
        await self.release.wait()  # a sub-window of A
        return [at(datetime.fromisoformat(start), f"s{start}")], None


async def test_a_split_page_reaches_a_slow_consumer_before_its_sub_windows() -> None:
    """One shared queue of one page, a consumer that lets every producer run until it blocks
    before taking the next page: the page that split A still comes before any sub-window's."""
    session = ScriptedSession()
    query = make_query(A.start, B.end, limit=LIMIT)
    search = InteractionSearch(
        session,  # type: ignore[arg-type]
        query,
        concurrency=4,
        ordered=False,
        plan=[(A, None), (B, None)],
        queue_pages=1,
    )
    checkpoint = Checkpoint(query_identity(query), {A.key: None, B.key: None}, 2)
    pages: list[Page] = []
    async for page in search.pages():
        checkpoint.advance(page)  # raised for a page of a window not yet pending
        pages.append(page)
        for _ in range(50):  # a slow consumer: the queue is full, A waits to put its page
            await asyncio.sleep(0)
        session.release.set()  # sub-windows answer as soon as they ask
    split = next(page for page in pages if page.spawned)
    assert split.window == A and len(split.spawned) > 1
    assert pages.index(split) > 0  # B's page came first: A did wait on a full queue
    assert checkpoint.done and checkpoint.windows_total == 2 + len(split.spawned)
    got = sorted(item.guid for page in pages for item in page.items)
    assert len(got) == len(set(got)) == (LIMIT - 1) + 4 + len(split.spawned)


class EndlessSession:
    """Ten windows of twenty pages of 100 interactions each; counts the requests."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.requests = 0

    async def get(
        self, path: str, params: Mapping[str, str], parse: Callable[[bytes], Any]
    ) -> tuple[list[Interaction], str | None]:
        self.requests += 1
        await asyncio.sleep(0)
        start, k = datetime.fromisoformat(params["start"]), int(params.get("continuationToken", 0))
        base = start + timedelta(hours=k)
        items = [at(base + timedelta(seconds=i), f"{start:%d}-{k}-{i}") for i in range(100)]
        return items, str(k + 1) if k < 19 else None


DAYS = [
    Window(START + k * timedelta(days=1), START + (k + 1) * timedelta(days=1)) for k in range(30)
]


async def stalled_ordered_search(
    session: EndlessSession, *, limit: int, concurrency: int
) -> tuple[list[str], int]:
    """Every interaction of ten days, read in order by a consumer that stalls after the first
    page until every producer has run as far as it may, and the requests sent by then."""
    search = InteractionSearch(
        session,  # type: ignore[arg-type]
        make_query(START, DAYS[9].end, limit=limit),
        concurrency=concurrency,
        plan=[(w, None) for w in DAYS[:10]],
        queue_pages=2,
        buffer_items=1000,
    )
    pages = search.pages()
    got = [item.guid for item in (await anext(pages)).items]
    for _ in range(500):  # a stalled consumer: every producer runs until it must wait
        await asyncio.sleep(0)
    stalled = session.requests
    got += [item.guid async for page in pages for item in page.items]
    assert len(got) == len(set(got)) == 10 * 20 * 100
    return got, stalled


async def test_ordered_mode_fetches_ahead_only_up_to_its_buffer() -> None:
    session = EndlessSession()
    got, stalled = await stalled_ordered_search(session, limit=1000, concurrency=4)  # not full
    # one page in the consumer's hands, the head's two queued, ten of 100 interactions for
    # later windows, and a page in each running window (at most ``concurrency``), waiting
    # to be added; one more of slack for the head's window: not the 200 pages of the range
    assert stalled <= 1 + 2 + 10 + 4 + 1
    assert got == sorted(got, key=lambda guid: [int(p) for p in guid.split("-")])


async def test_ordered_mode_runs_no_more_windows_than_its_buffer_holds_pages() -> None:
    """Each running window may hold a page beyond the buffer: a high cap must not multiply
    what is held (a cap of 64 doubled the peak RSS of an ordered year, measured)."""
    session = EndlessSession()
    _, stalled = await stalled_ordered_search(session, limit=500, concurrency=64)  # 2 pages
    # as above, with two running windows (1000 // 500), not the eight a fresh search starts
    assert stalled <= 1 + 2 + 10 + 2 + 1


def test_windows_fetching_at_once_follow_the_budget_times_the_latency() -> None:
    """Capped by ``concurrency``; before a latency is seen, or without a budget, at most 8."""

    def want(per_minute: float | None, latency: float, cap: int = 32) -> int:
        return windows_wanted(per_minute, latency, cap)

    assert want(160, 0.0) == 8  # no answer yet: the latency is not known
    assert want(None, 4.0) == 8  # no budget: nothing to derive it from
    assert want(160, 4.0) == 15  # 2.67 a second x 4 s x 1.25, + 1
    assert want(960, 4.0, cap=32) == 32  # ... up to the cap
    assert want(160, 0.3) == 2  # fast pages: one window at a time keeps the budget busy, + 1
    assert want(160, 0.0, cap=4) == want(160, 4.0, cap=4) == 4


def test_before_an_answer_the_latency_is_at_least_the_time_waited() -> None:
    """Eight windows at first; as the first requests go unanswered, as many as the budget
    would send meanwhile; once a latency is seen, it alone counts."""
    assert windows_wanted(960, 0.0, 64, waited=0.0) == 8
    assert windows_wanted(160, 0.0, 64, waited=1.0) == 8  # 2.67 x 1.25 + 1: fewer than 8
    assert windows_wanted(960, 0.0, 64, waited=2.0) == 41  # 16 a second x 2 s x 1.25, + 1
    assert windows_wanted(960, 0.0, 64, waited=4.0) == 64
    assert windows_wanted(960, 0.3, 64, waited=4.0) == 7
    assert windows_wanted(None, 0.0, 64, waited=4.0) == 8


class SilentSession:
    """Answers no search until ``release``; counts the requests waiting (``many``: 20)."""

    enough = 20

    def __init__(self) -> None:
        self.latency = 0.0
        self.waiting = 0
        self.many = asyncio.Event()
        self.release = asyncio.Event()

    async def get(
        self, path: str, params: Mapping[str, str], parse: Callable[[bytes], Any]
    ) -> tuple[list[Interaction], str | None]:
        self.waiting += 1
        if self.waiting >= self.enough:
            self.many.set()
        await self.release.wait()
        return [at(datetime.fromisoformat(params["start"]), params["start"])], None


class DroppingSession(SilentSession):
    """The first day answers at once; the second day's connection drops once ten requests
    wait (``dropped``); the others wait for ever. No latency is ever seen."""

    enough = 10

    def __init__(self) -> None:
        super().__init__()
        self.dropped = asyncio.Event()

    async def get(
        self, path: str, params: Mapping[str, str], parse: Callable[[bytes], Any]
    ) -> tuple[list[Interaction], str | None]:
        start = params["start"]
        if start == format_instant(DAYS[0].start):
            return [at(DAYS[0].start, "first")], None
        if start == format_instant(DAYS[1].start):
            await self.many.wait()
            self.dropped.set()
            raise ConnectionResetError("dropped")
        return await super().get(path, params, parse)


class Budget:
    current_per_minute = 960.0


def budgeted_days(session: SilentSession) -> InteractionSearch:
    """An unordered search of 30 one-day windows at 960 requests a minute, cap 64."""
    return InteractionSearch(
        session,  # type: ignore[arg-type]
        make_query(START, DAYS[-1].end),
        concurrency=64,
        ordered=False,
        plan=[(w, None) for w in DAYS],
        budget=Budget(),
    )


async def test_a_slow_first_answer_widens_the_search_to_the_budget() -> None:
    """30 one-day windows at 960 a minute and no answer yet: eight fetch at first, then
    more as the wait shows the latency is long (the year at 4 s pages lost 4 s, measured)."""
    session = SilentSession()
    pages = budgeted_days(session).pages()
    first = asyncio.ensure_future(anext(pages))
    await asyncio.wait_for(session.many.wait(), timeout=60)  # liveness, not a timing
    session.release.set()
    got = [(await first).window] + [page.window async for page in pages]
    assert sorted(got, key=lambda w: w.start) == DAYS


async def test_a_failure_while_the_first_answers_are_awaited_stops_the_widening() -> None:
    """A connection drops while the consumer is busy with a page and the search is still
    widening: no window starts after the failure, and the consumer gets it next."""
    session = DroppingSession()
    pages = budgeted_days(session).pages()
    assert (await anext(pages)).window == DAYS[0]
    await asyncio.wait_for(session.dropped.wait(), timeout=60)  # liveness, not a timing
    waiting = session.waiting
    await asyncio.sleep(0.5)  # ten turns of the budget: widening would have started more
    assert session.waiting == waiting
    with pytest.raises(ConnectionResetError):
        await anext(pages)


def test_the_default_cap_keeps_a_fast_budget_of_slow_pages_busy() -> None:
    """By default the cap does not bind before the budget does: 960 requests a minute of
    4 s pages need 64 requests in flight (a cap of 32 sent half of them, measured)."""
    cap = ClientConfig(client_id="x", client_secret="y").concurrency
    assert windows_wanted(960, 4.0, cap) >= 960 / 60 * 4.0
