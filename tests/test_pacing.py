"""Pacing a search: the work left from densities seen, and chains weighed against the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vccasync.pacing import Pace, chain_parts, page_density
from vccasync.windows import Window

START = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("pages_left", "work_left", "per_second", "latency", "most", "want"),
    [
        (10, 60, 160 / 60, 0.5, 32, 1),  # fast pages: ten pages chain in 5 s, the run takes 22 s
        (32, 32, 160 / 60, 2.0, 32, 6),  # one dense window, 2 s pages: 64 s of chain, 12 s run
        (32, 32, 160 / 60, 2.0, 4, 4),  # ... no more than the cap
        (10, 10, 16.0, 2.0, 32, 6),  # 960/min, the tail: parts of no fewer than 1.5 pages
        (2.9, 12, 4.0, 2.0, 32, 1),  # too little left to be worth a partial page
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


def test_more_work_elsewhere_means_fewer_parts() -> None:
    alone = chain_parts(pages_left=20, work_left=20, per_second=3.0, latency=2.0, most=64)
    shared = chain_parts(pages_left=20, work_left=80, per_second=3.0, latency=2.0, most=64)
    assert alone > shared > 1


def test_pace_learns_densities_and_counts_work() -> None:
    pace = Pace(page_size=1000)
    first, second = Window(START, START + 2 * DAY), Window(START + 2 * DAY, START + 4 * DAY)
    pace.add(first)
    pace.add(second)
    assert pace.work() == 0  # nothing seen: no density yet
    pace.seen(first, 1000, START + DAY / 4)  # 4,000 a day
    assert pace.pages_left(first) == pytest.approx(7.0)
    assert pace.pages_left(second) == pytest.approx(8.0)  # at the mean density
    pace.seen(first, 1000, START + DAY / 2)  # still 4,000 a day over the window's chain
    assert pace.work() == pytest.approx(6.0 + 8.0)
    pace.seen(first, 5, START + DAY / 4)  # a start not after the last one: nothing learnt
    assert pace.pages_left(first) == pytest.approx(6.0)
    sub = Window(START + DAY, START + 2 * DAY)
    pace.finish(first)
    pace.add(sub, density=12_000 / 86_400)  # a split's part, at its parent's density
    assert pace.pages_left(sub) == pytest.approx(12.0)
    assert pace.work() == pytest.approx(12.0 + 8.0)
    pace.finish(sub)
    pace.finish(second)
    assert pace.work() == 0


def test_page_density_leaves_a_tie_out() -> None:
    minute = timedelta(minutes=1)
    even = [START + minute * k for k in range(100)]
    assert page_density(even, START + 100 * minute) == pytest.approx(100 / 6000)
    assert page_density(even, START + 99 * minute) == pytest.approx(99 / (99 * 60))
    tied = [START] * 900 + even[1:]  # the rest of a tie, then the page's own pace
    assert page_density(tied, START + 100 * minute) == pytest.approx(100 / 6000)
    middle = even[:50] + [even[50]] * 500 + even[51:]  # a tie inside the page
    assert page_density(middle, START + 100 * minute) == pytest.approx(100 / 6000)
    assert page_density([START] * 10, START) == 0  # nothing before the cut
    assert page_density([START] * 10, START + minute) == pytest.approx(1 / 60)
