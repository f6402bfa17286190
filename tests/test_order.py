"""Order checked, not assumed: a server not paging by ``start`` loses and repeats nothing."""

from __future__ import annotations

import logging
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync import Page
from vccasync._models import Interaction
from vccasync._search.order import Dedup, Repair, in_order, last_start
from vccasync._search.order_watch import OrderWatch
from vccasync._windows import Window
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate, running_in_thread
from vccasync.fake._paging import bind_token, unbind_token
from vccasync.stores._checkpoint import Checkpoint

from .cli_helpers import cli_env, read_jsonl, run_cli, start_cli
from .conftest import client_for

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=4)
ORDERS = ["start", "guid", "hour"]


def at(second: int, guid: str = "g") -> Interaction:
    return Interaction(guid=guid, start=START + timedelta(seconds=second))


# -- pure logic --------------------------------------------------------------------------


def test_in_order_within_a_page_and_across_pages() -> None:
    assert in_order([], None) and in_order([], START)
    assert in_order([at(1), at(1), at(2)], None)
    assert not in_order([at(2), at(1)], None)
    assert in_order([at(5), at(6)], START + timedelta(seconds=5))  # ties across pages are fine
    assert not in_order([at(4), at(6)], START + timedelta(seconds=5))


def test_last_start_keeps_the_latest() -> None:
    assert last_start([], None) is None
    assert last_start([], START) == START
    assert last_start([at(3), at(1)], START) == START + timedelta(seconds=3)


def test_dedup_forgets_older_instants_until_told_to_remember_every_guid() -> None:
    dedup = Dedup()
    assert [dedup.first_time(i) for i in (at(1, "a"), at(1, "b"), at(1, "a"))] == [1, 1, 0]
    assert dedup.first_time(at(2, "c")) and dedup.first_time(at(3, "a"))  # "a" forgotten
    dedup.by_guid()
    assert dedup.guids == {"a"}
    assert dedup.first_time(at(4, "d")) and dedup.first_time(at(5, "e"))
    assert not dedup.first_time(at(9, "d")) and not dedup.first_time(at(0, "a"))
    seeded = Dedup(["x"], by_guid=True)
    assert not seeded.first_time(at(7, "x")) and seeded.first_time(at(7, "y"))


def test_repair_owns_what_the_split_window_kept() -> None:
    window = Window(START, START + timedelta(days=1), closed=True)
    cut = START + timedelta(hours=5)
    repair = Repair.of(window, cut, "tok", ["a"])
    sent_end = window.end + timedelta(milliseconds=1)  # the split window's query
    assert repair.window == Window(START, cut, after="tok", chain_end=sent_end)
    assert repair.seen == {"a"} and repair.window.query_end == sent_end
    assert repair.window.owns(START) and not repair.window.owns(cut)
    assert Window.from_key(repair.window.key) == repair.window
    assert repair.window.key.endswith(")~2025-01-02T00:00:00.001Z#tok") and "#" not in window.key
    assert sorted([repair.window, Window(START, cut)])[0] == Window(START, cut)
    old_form = Window(START, cut, after="tok")  # checkpoints written before chain_end
    assert Window.from_key(old_form.key) == old_form and old_form.query_end == cut
    again = Repair.of(repair.window, START + timedelta(hours=1), "t2", [])  # keeps its query
    assert again.window.query_end == sent_end


def test_watch_warns_once_and_hands_over_every_split(caplog: pytest.LogCaptureFixture) -> None:
    watch = OrderWatch()
    late = Repair.of(Window(START, START + timedelta(days=2)), START + timedelta(days=1), "t2", [])
    early = Repair.of(Window(START, START + timedelta(days=1)), START + timedelta(hours=1), "t", [])
    split_late = Page(late.window, [], None, repair=late)
    split_early = Page(early.window, [], None, repair=early)
    watch.split()
    watch.split()
    with caplog.at_level(logging.WARNING, logger="vccasync"):
        assert watch.violated(Window(START, END))
        assert not watch.violated(Window(START, END))
    breaker = Page(Window(START, END), [], "more")
    watch.broke_on(breaker)
    assert watch.broken and len(caplog.records) == 1 and "ascending start" in caplog.text
    # repairs come with the pages delivered, never ahead of the split they repair
    assert watch.delivered(split_late) == ()  # delivered before the breaker: it takes it
    assert watch.delivered(breaker) == (late.window,)
    assert watch.repairs == {late.window: late}
    assert watch.delivered(split_early) == (early.window,)  # delivered after: its own
    assert watch.repairs == {early.window: early, late.window: late}
    assert watch.delivered(Page(Window(START, END), [], None)) == ()


def test_watch_resumed_before_the_order_broke_repairs_the_splits_delivered_earlier() -> None:
    day = Window(START, START + timedelta(days=1))
    earlier = Repair.of(day, START + timedelta(hours=1), "t", [])
    watch = OrderWatch([earlier])
    assert watch.violated(Window(START, END))
    breaker = Page(Window(START, END), [], None)
    watch.broke_on(breaker)
    assert watch.delivered(breaker) == (earlier.window,)


def test_watch_resumed_breaks_on_a_checked_split_and_the_next_page_tells() -> None:
    """A resumed search found the page after a split's dropped token out of order (no window
    delivers that page): the next page delivered spawns the repairs, its own included."""
    day = Window(START, START + timedelta(days=1))
    earlier = Repair.of(day, START + timedelta(hours=1), "t", [])
    watch = OrderWatch([earlier])
    assert watch.unverified == [earlier]
    assert watch.violated(earlier.window)
    watch.broke_on(None)
    later = Repair.of(Window(START, END), START + timedelta(days=2), "t2", [])
    assert watch.delivered(Page(later.window, [], None, repair=later)) == tuple(
        sorted([earlier.window, later.window])
    )
    assert watch.delivered(Page(day, [], None)) == ()


# -- through the fake --------------------------------------------------------------------


@pytest.fixture(scope="module")
def dense() -> Any:
    # four dense days, one busy (~14,000 interactions): a single window that splits at once
    return generate(
        DatasetSpec(seed=21, start=START, days=4, per_day=2500, busy_day=1, busy_factor=2.0)
    )


@pytest.fixture(scope="module")
def want(dense: Any) -> list[str]:
    return [i["guid"] for i in dense.expected(START, END)]


@pytest.fixture(params=ORDERS)
async def fake(dense: Any, request: pytest.FixtureRequest) -> AsyncIterator[FakeVccServer]:
    # tokens bound to their query: a repair must send a token with the query it came from
    config = FakeConfig(order=request.param, bind_tokens=True)
    async with FakeVccServer(dense, config) as server:
        yield server


def exact(got: list[str], want: list[str]) -> None:
    repeated = [guid for guid, n in Counter(got).items() if n > 1]
    assert not repeated, f"{len(repeated)} repeated"
    assert not set(want) - set(got), f"{len(set(want) - set(got))} missing"
    assert len(got) == len(want) and set(got) == set(want)


def check_pages(fake: FakeVccServer, plan: list[Window], pages: list[Page]) -> None:
    """Every window ends once; splits only while the order held; repairs only out of order,
    one for each split, after the page that split."""
    spawned = [sub for page in pages for sub in page.spawned]
    assert sorted(page.window for page in pages if page.last) == sorted([*plan, *spawned])
    splits = [page for page in pages if page.repair is not None]
    repairs = [sub for sub in spawned if sub.after is not None]
    order = fake.config.order
    if order == "start":
        assert splits and not repairs
    elif order == "guid":  # the first page is out of order already: nothing ever splits
        assert not splits and not repairs
    else:  # pages look ordered until one goes back in time: the splits before are repaired
        assert splits and sorted(repairs) == sorted(p.repair.window for p in splits if p.repair)
        delivered = [page.window for page in pages]
        for split in splits:
            assert split.repair is not None
            spawner = next(i for i, p in enumerate(pages) if split.repair.window in p.spawned)
            assert delivered.index(split.window) <= spawner


@pytest.mark.parametrize("ordered", [True, False])
async def test_exact_in_every_paging_order(
    fake: FakeVccServer, want: list[str], ordered: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(fake, concurrency=6) as vcc:
        search = vcc.interactions(START, END, limit=500, ordered=ordered)
        with caplog.at_level(logging.WARNING, logger="vccasync"):
            pages = [page async for page in search.pages()]
    got = [item.guid for page in pages for item in page.items]
    exact(got, want)
    if fake.config.order == "start" and ordered:
        assert got == want
    warnings = [r for r in caplog.records if "ascending start" in r.getMessage()]
    assert len(warnings) == (fake.config.order != "start")
    check_pages(fake, search.windows, pages)


@pytest.mark.slow
@pytest.mark.parametrize("order", ["guid", "hour"])
async def test_async_for_is_exact_out_of_order(dense: Any, want: list[str], order: Any) -> None:
    server = FakeVccServer(dense, FakeConfig(order=order))
    async with server as fake, client_for(fake, concurrency=6) as vcc:
        got = [i.guid async for i in vcc.interactions(START, END, limit=500)]
        unordered = [i.guid async for i in vcc.interactions(START, END, ordered=False)]
    exact(got, want)
    exact(unordered, want)


async def test_ordered_iteration_keeps_windows_chronological(dense: Any) -> None:
    """In guid order, the planned windows still come one after the other in time."""
    start, end = START, START + timedelta(days=3)
    server = FakeVccServer(dense, FakeConfig(order="guid"))
    async with server as fake, client_for(fake, concurrency=4) as vcc:
        search = vcc.interactions(start, end, plan=[(w, None) for w in _days(start, end)])
        pages = [page async for page in search.pages()]
    windows = [page.window for page in pages]
    assert windows == sorted(windows)
    firsts = [p.items for p in pages if p.items]
    assert any(not in_order(items, None) for items in firsts)  # the server's order, kept


@pytest.mark.slow
@pytest.mark.parametrize("pages_after", [0, 1, 4])
async def test_resume_after_a_repair_from_the_checkpoint_is_exact(
    dense: Any, want: list[str], pages_after: int
) -> None:
    """Stop just after the page that spawned repairs (or a few later), keep only what a
    checkpoint keeps, resume in a new search: each interaction exactly once."""
    server = FakeVccServer(dense, FakeConfig(order="hour", bind_tokens=True))
    async with server as fake, client_for(fake, concurrency=6) as vcc:
        search = vcc.interactions(START, END, limit=500, ordered=False)
        checkpoint = Checkpoint.start(search.query)
        written: list[str] = []
        left: int | None = None
        pages = search.pages()
        async for page in pages:
            checkpoint.advance(page)
            written += [item.guid for item in page.items]
            if left is None and any(w.after for w in page.spawned):  # repairs: dropped tokens
                left = pages_after
            elif left is not None:
                left -= 1
            if left == 0:
                break
        await pages.aclose()  # type: ignore[attr-defined]
        assert left == 0 and any("#" in key for key in checkpoint.pending)
        plan = checkpoint.plan()
        rest = vcc.interactions(START, END, limit=500, ordered=False, plan=plan)
        written += [item.guid async for item in rest]
    exact(written, want)


def _days(start: datetime, end: datetime) -> list[Window]:
    days = [Window(start + timedelta(days=k), start + timedelta(days=k + 1)) for k in range(3)]
    return [*days[:-1], Window(days[-1].start, end, closed=True)]


# -- through the CLI ---------------------------------------------------------------------

CLI_ARGS = ["interactions", "--start", "2025-01-01", "--end", "2025-01-04", "--quiet"]
CLI_ARGS += ["--concurrency", "6", "--requests-per-minute", "100000"]


@pytest.fixture(scope="module")
def cli_want(dense: Any) -> set[str]:
    return {i["guid"] for i in dense.expected(START, END - timedelta(milliseconds=1))}


@pytest.fixture(scope="module", params=["guid", "hour"])
def thread_fake(dense: Any, request: pytest.FixtureRequest) -> Iterator[FakeVccServer]:
    with running_in_thread(dense, FakeConfig(order=request.param)) as server:
        yield server


@pytest.mark.slow
def test_cli_backfill_is_exact_out_of_order(
    thread_fake: FakeVccServer, cli_want: set[str], tmp_path: Path
) -> None:
    out = tmp_path / "x.jsonl"
    done = run_cli([*CLI_ARGS, "-o", str(out)], cli_env(thread_fake))
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stderr and "ascending start" in done.stderr
    got = [row["guid"] for row in read_jsonl(out)]
    exact(got, sorted(cli_want))


@pytest.mark.slow
@pytest.mark.parametrize("hold_after", [0, 4, 9])
def test_cli_resume_in_guid_order_is_exact(
    dense: Any, cli_want: set[str], tmp_path: Path, hold_after: int
) -> None:
    out = tmp_path / "x.jsonl"
    with running_in_thread(dense, FakeConfig(order="guid")) as fake:
        args, env = [*CLI_ARGS, "-o", str(out)], cli_env(fake)
        fake.gate.hold_after(hold_after)
        process = start_cli(args, env)
        assert fake.gate.wait_held(60), "the run never reached the gate"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        fake.gate.open()
        done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    exact([row["guid"] for row in read_jsonl(out)], sorted(cli_want))


def test_the_fakes_bound_tokens_hold_only_for_their_query() -> None:
    query = {"start": "a", "end": "b", "limit": "500"}
    bound = bind_token("dG9r", {**query, "continuationtoken": "x"})
    assert unbind_token(bound, query) == "dG9r"
    assert unbind_token(bound, {**query, "end": "c"}) is None
    assert unbind_token("dG9r", query) is None
