"""The search's parts alone: the scheduler, the buffers, the split decision, the order watch
and one window's chain of pages (no network, no clock: windows are held by events)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vccasync._errors import ResponseValidationError
from vccasync._models import Interaction
from vccasync._query import make_query
from vccasync._search import split_decision
from vccasync._search.buffers import OrderedBuffer, SharedQueue
from vccasync._search.chain import PageChain
from vccasync._search.order_watch import OrderWatch
from vccasync._search.pacing import Pace
from vccasync._search.scheduler import Scheduler
from vccasync._search.split_decision import Gauges, SplitDecision
from vccasync._windows import Page, Repair, Window, sub_window_count

START = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def day(k: int) -> Window:
    return Window(START + k * DAY, START + (k + 1) * DAY)


def items(count: int, at: datetime = START, step: timedelta = timedelta(seconds=36)) -> list[Any]:
    return [Interaction(guid=f"g{at:%j%H%M%S}-{k}", start=at + k * step) for k in range(count)]


async def settle() -> None:
    """Let every ready task run until it waits."""
    for _ in range(20):
        await asyncio.sleep(0)


# -- the scheduler -----------------------------------------------------------------------


class Windows:
    """Window runs held until released; some give up their slot (``holds``) meanwhile."""

    def __init__(self) -> None:
        self.started: list[Window] = []
        self.release: dict[Window, asyncio.Event] = {}
        self.holds: set[Window] = set()
        self.scheduler: Scheduler[str] | None = None

    def event(self, window: Window) -> asyncio.Event:
        return self.release.setdefault(window, asyncio.Event())

    async def run(self, window: Window, token: str | None, place: str | None) -> None:
        self.started.append(window)
        if window in self.holds:
            assert self.scheduler is not None
            async with self.scheduler.holding(window):
                await self.event(window).wait()
        else:
            await self.event(window).wait()

    def scheduler_of(
        self, wanted: int, first: Callable[[], str | None] = lambda: None
    ) -> Scheduler[str]:
        self.scheduler = Scheduler[str](self.run, wanted=lambda: wanted, first=first)
        return self.scheduler


def pending_windows(scheduler: Scheduler[str]) -> list[Window]:
    return [entry[2] for entry in sorted(scheduler.pending)]


async def test_scheduler_starts_the_earliest_windows_while_there_is_room() -> None:
    windows = Windows()
    scheduler = windows.scheduler_of(wanted=2)
    for k in (3, 0, 2, 1):
        scheduler.push(day(k), None, None)
    assert scheduler.spare() == 2 - 0 - 2  # two could start: none to spare
    scheduler.fill()
    await settle()
    assert windows.started == [day(0), day(1)]
    assert scheduler.fetching == 2 and pending_windows(scheduler) == [day(2), day(3)]
    windows.event(day(1)).set()  # a window ends: the next earliest takes its slot
    await settle()
    assert windows.started == [day(0), day(1), day(2)] and scheduler.fetching == 2
    await scheduler.close()
    assert not scheduler.tasks and not scheduler.pending


async def test_held_windows_free_their_slot_up_to_half_as_many_as_wanted() -> None:
    windows = Windows()
    scheduler = windows.scheduler_of(wanted=4)
    windows.holds = {day(2), day(3)}
    for k in range(6):
        scheduler.push(day(k), None, None)
    scheduler.fill()
    await settle()
    # day 3 held: day 4 takes its slot; day 2 held too: two held is half of four, no more
    assert windows.started == [day(0), day(1), day(2), day(3), day(4)]
    assert len(scheduler.held) == 2 and scheduler.fetching == 3
    windows.event(day(0)).set()
    await settle()
    assert pending_windows(scheduler) == [day(5)]  # a free slot, but the held bound binds
    early = Window(day(1).start + timedelta(hours=12), day(2).start)
    scheduler.push(early, None, None)  # wanted before anything held: it always may start
    scheduler.fill()
    await settle()
    assert windows.started[-1] == early and pending_windows(scheduler) == [day(5)]
    await scheduler.close()


async def test_the_consumers_window_starts_whatever_the_room() -> None:
    windows = Windows()
    scheduler = windows.scheduler_of(wanted=1, first=lambda: "b")
    scheduler.push(day(0), None, "a")
    scheduler.push(day(1), "tok", "b")
    scheduler.fill()
    scheduler.fill()  # started once
    await settle()
    assert windows.started == [day(0), day(1)] and scheduler.fetching == 2
    assert scheduler.pending == []
    await scheduler.close()


async def test_nothing_starts_after_a_failure_and_the_first_failure_stays() -> None:
    windows = Windows()
    scheduler = windows.scheduler_of(wanted=1)
    for k in range(3):
        scheduler.push(day(k), None, None)
    scheduler.fill()
    await settle()
    first, second = ValueError("first"), ValueError("second")
    scheduler.fail(first)
    scheduler.fail(second)
    windows.event(day(0)).set()
    await settle()
    assert scheduler.failure.result() is first
    assert windows.started == [day(0)] and pending_windows(scheduler) == [day(1), day(2)]
    await scheduler.close()


# -- the buffers ------------------------------------------------------------------------


class Held:
    """A ``Hold`` that counts how often a window gave up its slot, and whether it still does."""

    def __init__(self) -> None:
        self.entered = self.inside = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        self.entered += 1
        self.inside += 1
        try:
            yield
        finally:
            self.inside -= 1


async def test_the_head_holds_its_pages_and_later_windows_share_the_buffer() -> None:
    heads: list[object] = []
    buffer = OrderedBuffer(2, 5, on_head=lambda: heads.append(buffer.head))
    a = buffer.insert(None)
    c = buffer.insert(a)
    b = buffer.insert(a)  # right after a: before c
    assert buffer.head is a and a.next is b and b.next is c and c.next is None
    assert buffer.may_buffer(a, Page(day(0), items(9), "t"))  # the head counts pages
    assert buffer.may_buffer(b, Page(day(1), items(9), "t"))  # one page always fits
    held = Held()
    await buffer.put(b, Page(day(1), items(3), "t"), held)
    assert buffer.buffered == 3 and b.items == 3
    assert not buffer.may_buffer(c, Page(day(2), items(3), None))  # 3 + 3 > 5
    assert buffer.may_buffer(c, Page(day(2), items(2), None))
    await buffer.put(a, Page(day(0), items(1), "t"), held)
    await buffer.put(a, Page(day(0), items(1), None), held)
    assert buffer.buffered == 3 and held.entered == 0  # the head's pages are not buffered
    assert not buffer.may_buffer(a, Page(day(0), [], None))  # two pages: the head is full

    late = asyncio.create_task(buffer.put(c, Page(day(2), items(3), None), held))
    await settle()
    assert not late.done() and held.inside == 1  # the window gave up its slot
    failure: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    buffer.taken(await buffer.get(failure))
    await settle()
    assert not late.done() and buffer.head is a and heads == []  # a's last page still queued
    buffer.taken(await buffer.get(failure))  # a ends: b is read now, its pages the head's
    await settle()
    assert heads == [b] and late.done() and held.inside == 0 and held.entered == 1
    assert buffer.buffered == 3 and c.items == 3 and buffer.room() == 2
    buffer.close()
    assert buffer.head is None


async def test_the_shared_queue_holds_a_window_while_full_and_hands_on_a_failure() -> None:
    shared, held = SharedQueue(1), Held()
    failure: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    first, second = Page(day(0), items(1), "t"), Page(day(0), items(1), None)
    await shared.put(first, held)
    waiting = asyncio.create_task(shared.put(second, held))
    await settle()
    assert held.inside == 1 and not waiting.done()
    assert await shared.get(failure) is first
    await settle()
    assert waiting.done() and held.inside == 0
    assert await shared.get(failure) is second
    getter = asyncio.create_task(shared.get(failure))
    await settle()
    failure.set_result(RuntimeError("window failed"))
    with pytest.raises(RuntimeError, match="window failed"):
        await getter


# -- the split decision -----------------------------------------------------------------

LIMIT = 100


def dense_start() -> tuple[Pace, list[Interaction]]:
    """A pace that saw one full page of day 0: ``LIMIT`` items in its first hour."""
    pace = Pace(LIMIT)
    pace.add(day(0))
    page = items(LIMIT, START)
    pace.seen(day(0), [i.start for i in page], page[-1].start)
    return pace, page


def gauges(**given: Any) -> Gauges:
    return Gauges(**{"per_minute": None, "page_time": 0.0, "cycle": 0.0, "room": None} | given)


def test_a_chain_waits_as_long_as_the_budget_makes_it() -> None:
    assert gauges(page_time=0.5, cycle=2.0, spare=0).latency == 2.0
    assert gauges(page_time=0.5, cycle=0.1, spare=0).latency == 0.5
    assert gauges(page_time=0.0, cycle=2.0, spare=0).latency == 0.0  # no answer measured yet


def test_without_a_budget_a_dense_window_fills_the_idle_windows() -> None:
    pace, page = dense_start()
    decision = SplitDecision(pace, limit=LIMIT, concurrency=8)
    cut = page[-1].start
    want = sub_window_count(
        first=page[0].start, cut=cut, items=LIMIT - 1, end=day(0).end, page_size=LIMIT, spare=3
    )
    assert want == 4  # 23 hours at 99 an hour: 22 pages, at most spare + 1 parts
    scale = pace.scale(day(0))
    subs = decision.split(day(0), page, gauges(spare=3))
    assert len(subs) == 4 and subs[0].start == cut and subs[-1].end == day(0).end
    assert all(a.end == b.start for a, b in itertools.pairwise(subs))
    assert pace.chains() == 4 and {pace.scale(s) for s in subs} == {scale}  # the pace moved on
    pace, page = dense_start()
    decision = SplitDecision(pace, limit=LIMIT, concurrency=8)
    assert decision.split(day(0), page, gauges(spare=0)) == ()  # nothing idle: keep paging
    assert pace.chains() == 1


def test_a_page_of_one_instant_or_outside_the_window_never_splits() -> None:
    pace, _ = dense_start()
    decision = SplitDecision(pace, limit=LIMIT, concurrency=8)
    tie = items(LIMIT, START + timedelta(hours=1), step=timedelta(0))
    assert decision.split(day(0), tie, gauges(spare=7)) == ()
    _, before = dense_start()
    assert decision.split(day(1), before, gauges(spare=7)) == ()  # the cut is before its start
    assert pace.chains() == 1


class Recorded:
    """A stand-in for a pacing function: its answer, and the keywords it was asked with."""

    def __init__(self, answer: int) -> None:
        self.answer, self.asked = answer, dict[str, Any]()

    def __call__(self, **kwargs: Any) -> int:
        self.asked = kwargs
        return self.answer


@pytest.mark.parametrize(("chain", "paying", "want"), [(5, 3, 5), (5, 1, 1), (1, 5, 1)])
def test_with_a_budget_the_chain_is_cut_only_where_a_cut_pays(
    monkeypatch: pytest.MonkeyPatch, chain: int, paying: int, want: int
) -> None:
    pace, page = dense_start()
    pace.add(day(1))
    chain_parts, paying_parts = Recorded(chain), Recorded(paying)
    monkeypatch.setattr(split_decision, "chain_parts", chain_parts)
    monkeypatch.setattr(split_decision, "paying_parts", paying_parts)
    decision = SplitDecision(pace, limit=LIMIT, concurrency=6)
    read = gauges(per_minute=120.0, page_time=0.5, cycle=1.5, spare=0)  # unordered
    assert decision.parts(day(0), page, page[-1].start, read) == want
    left, work = pace.pages_left(day(0)), pace.work()
    assert chain_parts.asked == {
        "pages_left": left,
        "work_left": work,
        "per_second": 2.0,
        "latency": 1.5,  # the chain's page, the budget's wait included
        "most": 6,
        "stall": False,
    }
    assert paying_parts.asked == {
        "pages_left": left,
        "parts": chain,
        "work_left": work,
        "chains": 2,
        "per_second": 2.0,
        "page_time": 0.5,  # the measured latency
    }


def test_ordered_a_full_buffer_ahead_stalls_the_budget_and_no_cut_is_vetoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pace, page = dense_start()
    pace.add(day(1))  # a later window: its pages fill the buffer ahead first
    chain_parts, paying_parts = Recorded(3), Recorded(1)
    monkeypatch.setattr(split_decision, "chain_parts", chain_parts)
    monkeypatch.setattr(split_decision, "paying_parts", paying_parts)
    decision = SplitDecision(pace, limit=LIMIT, concurrency=6)
    read = gauges(per_minute=120.0, page_time=0.5, room=50, spare=0)
    ahead = pace.work(until=day(0)) + 50 / LIMIT
    assert ahead < pace.work()
    assert decision.parts(day(0), page, page[-1].start, read) == 3
    assert chain_parts.asked["stall"] and chain_parts.asked["work_left"] == ahead
    assert paying_parts.asked == {}  # a stalled budget is not weighed against partial pages
    roomy = gauges(per_minute=120.0, page_time=0.5, room=10**9, spare=0)
    assert decision.parts(day(0), page, page[-1].start, roomy) == 1  # the cut does not pay
    assert not chain_parts.asked["stall"] and chain_parts.asked["work_left"] == pace.work()


# -- the order watch --------------------------------------------------------------------


def split_page(window: Window, cut: datetime) -> Page:
    repair = Repair.of(window, cut, "dropped", [])
    return Page(window, [], None, spawned=(Window(cut, window.end),), repair=repair)


def repaired(page: Page) -> Window:
    assert page.repair is not None
    return page.repair.window


def test_repairs_wait_for_the_break_then_come_with_each_split_delivered() -> None:
    watch = OrderWatch()
    one = split_page(day(0), START + timedelta(hours=6))
    two = split_page(day(1), day(1).start + timedelta(hours=6))
    three = split_page(day(2), day(2).start + timedelta(hours=6))
    for _ in (one, two, three):
        watch.split()
    assert watch.delivered(one) == ()  # the order holds: the repair is kept, not run
    assert watch.violated(day(3))
    breaker = Page(day(3), [], "more")
    watch.broke_on(breaker)
    assert watch.delivered(two) == ()  # delivered before the breaker: it waits for it
    assert watch.delivered(breaker) == (repaired(one), repaired(two))
    assert watch.delivered(three) == (repaired(three),)
    assert set(watch.repairs) == {repaired(p) for p in (one, two, three)}


def test_a_watch_resumed_broken_runs_its_repairs_and_checks_nothing() -> None:
    earlier = Repair.of(day(0), START + timedelta(hours=3), "t", ["a"])
    watch = OrderWatch([earlier], broken=True)
    assert watch.broken and watch.unverified == [] and watch.repairs == {earlier.window: earlier}
    assert not watch.violated(day(1))  # already broken: no second warning
    page = split_page(day(1), day(1).start + timedelta(hours=2))
    assert watch.delivered(page) == (repaired(page),)


def test_a_watch_resumed_in_order_checks_only_its_latest_split() -> None:
    first = Repair.of(day(0), START + timedelta(hours=3), "t", [])
    latest = Repair.of(day(1), day(1).start + timedelta(hours=3), "u", [])
    watch = OrderWatch([first, latest])
    assert not watch.broken and watch.unverified == [latest] and watch.repairs == {}
    assert watch.delivered(Page(day(2), [], None)) == ()


# -- one window's chain of pages --------------------------------------------------------


class Pages:
    """A source answering each request with the next scripted page."""

    def __init__(self, *answers: tuple[list[Interaction], str | None]) -> None:
        self.answers, self.asked = list(answers), list[Mapping[str, str] | None]()

    async def get(
        self, path: str, params: Mapping[str, str] | None, parse: Callable[[bytes], Any]
    ) -> tuple[list[Interaction], str | None]:
        self.asked.append(params)
        return self.answers.pop(0)


def chain_of(
    source: Pages,
    watch: OrderWatch | None = None,
    split: Callable[[Window, list[Interaction]], tuple[Window, ...]] = lambda w, i: (),
) -> PageChain:
    query = make_query(START, START + 3 * DAY - timedelta(milliseconds=1), limit=4)
    return PageChain(source, query, watch or OrderWatch(), Pace(4), split)


async def test_a_chain_drops_a_tie_repeated_across_pages_and_stops_on_a_repeated_token() -> None:
    tie = Interaction(guid="tie", start=START + timedelta(hours=1))
    after = Interaction(guid="after", start=START + timedelta(hours=2))
    source = Pages(([tie], "t1"), ([tie, after], "t1"))
    got: list[Page] = []
    with pytest.raises(ResponseValidationError, match="repeated a continuation token"):
        async for page in chain_of(source).pages(day(0), None):
            got.append(page)
    assert [[i.guid for i in p.items] for p in got] == [["tie"], ["after"]]
    assert [p.get("continuationToken") if p else None for p in source.asked] == [None, "t1"]


async def test_a_split_page_ends_its_window_before_the_cut_with_the_dropped_token() -> None:
    full = items(4, START, step=timedelta(hours=1))
    cut = full[-1].start
    subs = (Window(cut, day(0).end),)
    watch = OrderWatch()
    chain = chain_of(Pages((full, "next")), watch, lambda w, i: subs)
    [page] = [p async for p in chain.pages(day(0), None)]
    assert page.last and page.spawned == subs and page.items == full[:3]  # before the cut
    assert page.repair is not None and page.repair.window.after == "next"
    assert page.repair.window == Window(START, cut, after="next", chain_end=day(0).query_end)


async def test_a_page_back_in_time_breaks_the_order_and_the_chain_dedups_by_guid() -> None:
    late = Interaction(guid="late", start=START + timedelta(hours=5))
    early = Interaction(guid="early", start=START + timedelta(hours=1))
    again = Interaction(guid="late", start=START + timedelta(hours=2))  # by guid only a repeat
    watch = OrderWatch()
    source = Pages(([late], "t1"), ([early, again], None))
    pages = [p async for p in chain_of(source, watch).pages(day(0), None)]
    assert watch.broken and [len(p.items) for p in pages] == [1, 1]
    assert watch.delivered(pages[0]) == () and watch.delivered(pages[1]) == ()  # nothing split
