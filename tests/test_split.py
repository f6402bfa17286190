"""Adaptive splitting of dense windows: exact sets, no duplicates, order, checkpoints, resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vccasync import Page
from vccasync._windows import Window
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate

from .test_search import client_for

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=7)
TIE = START + timedelta(days=4, hours=10, minutes=30)


@pytest.fixture(scope="module")
def dense() -> Any:
    # one dense week: ~25,000 interactions, a busy day with three times the traffic and a
    # 1,200-interaction tie on one instant
    return generate(
        DatasetSpec(
            seed=11,
            start=START,
            days=7,
            per_day=3000,
            busy_day=2,
            busy_factor=3.0,
            tie_size=1200,
            tie_at=TIE,
        )
    )


@pytest.fixture
async def fake(dense: Any) -> AsyncIterator[FakeVccServer]:
    async with FakeVccServer(dense) as server:
        yield server


def guids(pages: list[Page]) -> list[str]:
    return [it.guid for page in pages for it in page.items]


def check_window_bookkeeping(plan: list[Window], pages: list[Page]) -> None:
    """Every window, planned or spawned, gets pages and ends exactly once; spawned ones after
    the page that spawned them."""
    spawned = [sub for page in pages for sub in page.spawned]
    ended = [page.window for page in pages if page.last]
    assert sorted(ended) == sorted([*plan, *spawned])
    for index, page in enumerate(pages):
        assert not page.spawned or page.last  # a split ends the window it happens in
        for sub in page.spawned:
            assert any(later.window == sub for later in pages[index + 1 :])


@pytest.mark.slow
async def test_dense_week_is_split_and_exact_in_order(fake: FakeVccServer, dense: Any) -> None:
    want = [i["guid"] for i in dense.expected(START, END)]
    assert len(want) > 20_000 and sum(1 for i in dense.expected(TIE, TIE)) == 1200
    async with client_for(fake, concurrency=6) as vcc:
        search = vcc.interactions(START, END, limit=500)
        pages = [page async for page in search.pages()]
    assert guids(pages) == want  # exact, chronological, no duplicate
    assert sum(len(p.spawned) for p in pages) >= 5
    check_window_bookkeeping(search.windows, pages)
    tie_pages = [p for p in pages if p.items and p.items[0].start == p.items[-1].start == TIE]
    assert tie_pages and all(not p.spawned for p in tie_pages)  # a tie is followed, not split


@pytest.mark.slow
async def test_dense_week_unordered_through_faults(dense: Any) -> None:
    faults = FaultConfig(rate=0.12, seed=5, stall_seconds=1.0, retry_after="0.1")
    async with FakeVccServer(dense, FakeConfig(faults=faults, token_ttl=3.0)) as fake:
        async with client_for(fake, concurrency=6, timeout=0.5, max_attempts=10) as vcc:
            search = vcc.interactions(START, END, limit=500, ordered=False)
            pages = [page async for page in search.pages()]
        assert sum(fake.stats.faults.values()) >= 5
    got, want = guids(pages), [i["guid"] for i in dense.expected(START, END)]
    assert len(got) == len(set(got)) == len(want) and set(got) == set(want)
    assert sum(len(p.spawned) for p in pages) >= 5
    check_window_bookkeeping(search.windows, pages)


async def test_busy_day_alone_splits_again_inside_sub_windows(
    fake: FakeVccServer, dense: Any
) -> None:
    start, end = START + timedelta(days=2), START + timedelta(days=3)
    async with client_for(fake, concurrency=8) as vcc:
        search = vcc.interactions(start, end, limit=300)
        pages = [page async for page in search.pages()]
    assert guids(pages) == [i["guid"] for i in dense.expected(start, end)]
    planned = set(search.windows)
    assert any(p.spawned and p.window not in planned for p in pages)  # a sub-window split too
    check_window_bookkeeping(search.windows, pages)


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [3, 11, 25])
async def test_resume_from_the_generic_checkpoint_rule(
    fake: FakeVccServer, dense: Any, stop_after: int
) -> None:
    """Stop mid-way, keep only what a checkpoint keeps, resume: each interaction exactly once."""
    want = [i["guid"] for i in dense.expected(START, END)]
    async with client_for(fake, concurrency=6) as vcc:
        search = vcc.interactions(START, END, limit=500)
        state: dict[Window, str | None] = dict.fromkeys(search.windows)
        written: list[str] = []
        pages = search.pages()
        seen = 0
        async for page in pages:
            written += [it.guid for it in page.items]
            if page.last:
                del state[page.window]
            else:
                state[page.window] = page.next_token
            state.update(dict.fromkeys(page.spawned))
            seen += 1
            if seen == stop_after:
                break
        await pages.aclose()  # type: ignore[attr-defined]
        plan = sorted(state.items())
        assert any(window not in search.windows for window, _ in plan)  # sub-windows pending
        rest = vcc.interactions(START, END, limit=500, plan=plan)
        written += [it.guid async for it in rest]
    assert written == want
