"""Pacing a search: the day's shape, the work left, and chains weighed against the run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vccasync._search.pacing import Pace, chain_parts, paying_parts
from vccasync._search.profile import DayProfile
from vccasync._windows import Window

START = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("pages_left", "work_left", "per_second", "latency", "most", "want"),
    [
        (10, 60, 160 / 60, 0.5, 32, 1),  # fast pages: ten pages chain in 5 s, the run takes 22 s
        (32, 32, 160 / 60, 2.0, 32, 6),  # one dense window, 2 s pages: 64 s of chain, 12 s run
        (32, 32, 160 / 60, 2.0, 4, 4),  # ... no more than the cap
        (10, 10, 16.0, 2.0, 32, 10),  # 960/min, the tail: the budget idles, parts of a page
        # 960/min, 2 s pages: the budget sends the 40 left in 2.5 s, under two pages' time, so
        # a chain of two pages would set the end: parts of a page or less
        (6, 40, 16.0, 2.0, 32, 6),
        (2.9, 20, 4.0, 2.0, 32, 1),  # too little left to be worth a partial page
        (2.9, 3, 16.0, 2.0, 32, 3),  # ... unless the budget idles: parts of a page or less
        (1.2, 3, 160 / 60, 4.0, 32, 2),  # the tail, 4 s pages: two chained pages at once
        (1.0, 1, 16.0, 2.0, 32, 1),  # one page: nothing to gain
        (10, 60, 0.0, 2.0, 32, 1),  # no budget known
        (10, 60, 1.0, 0.0, 32, 1),  # no latency seen yet
    ],
)
def test_chain_parts(
    pages_left: float, work_left: float, per_second: float, latency: float, most: int, want: int
) -> None:
    got = chain_parts(
        pages_left=pages_left,
        work_left=work_left,
        per_second=per_second,
        latency=latency,
        most=most,
    )
    assert got == want


@pytest.mark.parametrize(
    ("pages_left", "work_left", "want"),
    [
        (2.15, 29.0, 2),  # ordered, 4 s pages: 3 requests (12 s) outlast the buffer's 10.9 s
        (2.15, 29.0 * 1.2, 1),  # ... which the budget takes 13 s to fill: the chain fits
        (2.9, 2.9, 3),  # the buffer is full: a page each
        (9.5, 4.0, 10),  # ... however many, no more than the requests expected
    ],
)
def test_chain_parts_when_the_budget_stalls(pages_left: float, work_left: float, want: int) -> None:
    got = chain_parts(
        pages_left=pages_left,
        work_left=work_left,
        per_second=160 / 60,
        latency=4.0,
        most=32,
        stall=True,
    )
    assert got == want
    unstalled = chain_parts(
        pages_left=pages_left, work_left=work_left, per_second=160 / 60, latency=4.0, most=32
    )
    assert unstalled <= got  # without the stall, parts keep at least 1.5 expected pages


def test_more_work_elsewhere_means_fewer_parts() -> None:
    alone = chain_parts(pages_left=20, work_left=20, per_second=3.0, latency=2.0, most=64)
    shared = chain_parts(pages_left=20, work_left=80, per_second=3.0, latency=2.0, most=64)
    assert alone > shared > 1


@pytest.mark.parametrize(
    ("pages_left", "parts", "work_left", "chains", "per_second", "page_time", "pays"),
    [
        # 40 days, 900 a day, 2 s pages, 160/min: 6 chains of about 7 pages; after a first
        # page, 5.3 left of 35 (38 requests): 10.6 s of chain against 14.3 s of budget
        (5.3, 2, 35, 6, 160 / 60, 2.0, False),
        (5.3, 3, 35, 6, 160 / 60, 2.0, False),
        # the longest of 6 chains sharing the budget: 7 pages at its turn of it (2.25 s)
        # take 15.8 s, longer than the budget's 14.3 s; halved, the budget binds
        (7.0, 2, 35, 6, 160 / 60, 2.0, True),
        (7.0, 2, 35, 3, 160 / 60, 2.0, False),  # 3 chains: 14 s of chain, 13.8 s of budget
        (32, 6, 32, 1, 160 / 60, 2.0, True),  # one dense window: 64 s of chain, 12 s of budget
        (10, 6, 10, 1, 16.0, 2.0, True),  # 960/min: the budget sends it all in a second
        (3.0, 2, 60, 10, 16.0, 1.0, False),  # a short chain among much work: the budget binds
        (10, 1, 10, 1, 16.0, 2.0, False),  # one part is no split
        (10, 4, 10, 1, 0.0, 2.0, False),  # no budget known
        (10, 4, 10, 1, 1.0, 0.0, False),  # no page time measured yet
    ],
)
def test_a_split_pays_only_if_it_shortens_the_run(
    pages_left: float,
    parts: int,
    work_left: float,
    chains: int,
    per_second: float,
    page_time: float,
    pays: bool,
) -> None:
    got = paying_parts(
        pages_left=pages_left,
        parts=parts,
        work_left=work_left,
        chains=chains,
        per_second=per_second,
        page_time=page_time,
    )
    assert (got > 1) is pays


@pytest.mark.parametrize(
    ("work_left", "pays"),
    [
        (29.5, True),  # 31.5 requests, 11.8 s: two parts save 2.5 s for half a request
        (32.5, False),  # 34.5 requests, 12.9 s: they would save 1.4 s, within the scatter
        (34.0, False),  # 36 requests, 13.5 s: the budget binds already, parts add requests
    ],
)
def test_a_chain_just_longer_than_the_budget(work_left: float, pays: bool) -> None:
    # 6.75 pages of 2 s and the last: 14.5 s of chain, 2.2 s of scatter; 4 chains at 160/min
    got = paying_parts(
        pages_left=6.75, parts=2, work_left=work_left, chains=4, per_second=160 / 60, page_time=2.0
    )
    assert (got == 2) is pays


@pytest.mark.parametrize(
    ("pages_left", "work_left", "chains", "page_time", "want"),
    [
        # a page and a bit left is two requests in a row, 7.5 s at 4 s pages and 10 chains,
        # where the budget sends the 12 left in 4.4 s: halves are one request each
        (1.27, 6.75, 10, 3.71, 2),
        # the 900-a-day row's first week, its pages estimated from a busy Monday: 15.6 s of
        # chain against 13.9 s of budget; two parts would save 1.6 s, within the scatter
        (6.42, 33.93, 6, 2.04, 1),
    ],
)
def test_a_chain_ends_with_a_part_filled_page(
    pages_left: float, work_left: float, chains: int, page_time: float, want: int
) -> None:
    got = paying_parts(
        pages_left=pages_left,
        parts=2,
        work_left=work_left,
        chains=chains,
        per_second=160 / 60,
        page_time=page_time,
    )
    assert got == want


def _spread(begin: datetime, end: datetime, count: int) -> list[datetime]:
    """``count`` starts spread evenly over ``[begin, end)``."""
    return [begin + (end - begin) * k / count for k in range(count)]


def test_profile_is_flat_after_one_span_and_interpolates_unseen_hours() -> None:
    profile = DayProfile()
    assert not profile.known and profile.expected(START, START + DAY) == 0
    profile.add(START, START + 6 * HOUR, _spread(START, START + 6 * HOUR, 600))  # 100 an hour
    assert profile.expected(START + DAY, START + 2 * DAY) == pytest.approx(2400)
    # the busy hours 12-14 seen too: 1,000 an hour; 6-11 lie on the line from 100 to 1,000
    noon = START + 12 * HOUR
    profile.add(noon, noon + 2 * HOUR, _spread(noon, noon + 2 * HOUR, 2000))
    rates = [r * 3600 for r in profile.rates()]
    assert rates[:6] == pytest.approx([100] * 6) and rates[12:14] == pytest.approx([1000] * 2)
    assert rates[6:12] == pytest.approx([100 + 900 * k / 7 for k in range(1, 7)])
    assert rates[14] == pytest.approx(1000 - 900 / 11)  # 14..23 down to midnight's 100
    assert profile.expected(noon, noon + HOUR / 2) == pytest.approx(500)
    whole = profile.expected(START + 7 * DAY, START + 8 * DAY)
    assert profile.expected(START, START + 7 * DAY) == pytest.approx(7 * whole)


def test_profile_quantiles_cut_equal_expected_items() -> None:
    profile = DayProfile()
    night, day = START, START + 8 * HOUR  # 100 an hour by night, 1,100 by day
    profile.add(night, day, _spread(night, day, 800))
    profile.add(day, START + DAY, _spread(day, START + DAY, 16 * 1100))
    begin, end = START + 3 * DAY + 2 * HOUR, START + 5 * DAY + 20 * HOUR
    cuts = profile.quantiles(begin, end, 5)
    assert len(cuts) == 4 and begin < cuts[0] < cuts[1] < cuts[2] < cuts[3] < end
    parts = [profile.expected(a, b) for a, b in itertools.pairwise([begin, *cuts, end])]
    assert parts == pytest.approx([profile.expected(begin, end) / 5] * 5, rel=1e-6)
    assert DayProfile().quantiles(begin, begin + 4 * HOUR, 4)[0] == begin + HOUR  # nothing seen


def test_profile_counts_a_crowd_at_one_instant_as_one_item() -> None:
    profile = DayProfile()
    starts = _spread(START, START + HOUR, 100) + [START + HOUR / 2 + timedelta(seconds=1)] * 1200
    profile.add(START, START + HOUR, starts)
    assert profile.expected(START, START + HOUR) == pytest.approx(101)


def test_profile_bins_by_the_utc_hour_whatever_the_offset() -> None:
    paris = timezone(timedelta(hours=1))
    utc, local = DayProfile(), DayProfile()
    starts = _spread(START, START + 2 * HOUR, 50)
    utc.add(START, START + 2 * HOUR, starts)
    local.add(START, START + 2 * HOUR, [s.astimezone(paris) for s in starts])
    assert local.rates() == utc.rates()


def test_pace_scales_the_shape_by_how_busy_each_window_is() -> None:
    pace = Pace(page_size=1000)
    quiet, busy = Window(START, START + 7 * DAY), Window(START + 7 * DAY, START + 14 * DAY)
    pace.add(quiet)
    pace.add(busy)
    assert pace.work() == 0  # nothing seen: no shape yet
    pace.seen(quiet, _spread(START, START + DAY, 1000), START + DAY)  # 1,000 a day
    assert pace.pages_left(quiet) == pytest.approx(6.0)
    assert pace.pages_left(busy) == pytest.approx(7.0)  # as busy as the shape, before a page
    pace.seen(busy, _spread(busy.start, busy.start + DAY / 4, 1000), busy.start + DAY / 4)
    assert pace.scale(busy) == pytest.approx(4.0, rel=0.2)  # 4,000 a day against 1,000
    assert pace.pages_left(busy) > 3 * pace.pages_left(quiet)
    pace.seen(quiet, [], START + DAY / 2)  # a start not after the latest: nothing learnt
    assert pace.pages_left(quiet) == pytest.approx(6.0, rel=0.05)
    cut = busy.start + DAY / 4
    sub = Window(cut, busy.end)
    scale = pace.scale(busy)
    pace.finish(busy)
    pace.add(sub, scale)  # a split's part, at its parent's scale
    assert pace.scale(sub) == scale
    assert pace.work() == pytest.approx(pace.pages_left(quiet) + pace.pages_left(sub))
    assert pace.work(until=quiet) == pytest.approx(pace.pages_left(quiet))
    resumed = Window(START + 14 * DAY, START + 21 * DAY)
    pace.add(resumed, resumed=True)  # from a token: covered from its first page's first start
    mid = resumed.start + 3 * DAY
    pace.seen(resumed, _spread(mid, mid + DAY / 2, 1000), mid + DAY / 2)
    assert pace.scale(resumed) > 1  # not 1,000 over the 3.5 days before its first page
    for window in (quiet, sub, resumed):
        pace.finish(window)
    assert pace.work() == 0


@pytest.mark.parametrize(
    ("pages_left", "parts", "work_left", "chains", "per_second", "want"),
    [
        (5.3, 6, 35, 6, 160 / 60, 1),  # the 900-a-day row: no cut shortens the run
        (8.0, 6, 35, 6, 160 / 60, 2),  # 16 s of chain: two parts are enough, more only cost
        (32, 6, 32, 1, 160 / 60, 6),  # one dense window: five would leave 13.8 s of chain
        (10, 6, 10, 1, 16.0, 6),  # 960/min: as many as offered, each shortens the chain
    ],
)
def test_paying_parts_keeps_the_fewest_that_shorten_the_run_most(
    pages_left: float, parts: int, work_left: float, chains: int, per_second: float, want: int
) -> None:
    got = paying_parts(
        pages_left=pages_left,
        parts=parts,
        work_left=work_left,
        chains=chains,
        per_second=per_second,
        page_time=2.0,
    )
    assert got == want
