"""The benchmarks' shape bound (``benchmarks.bounds``): small shapes worked out by hand."""

from __future__ import annotations

import pytest

from benchmarks.bounds import shape_seconds


def bound(pages: list[float], **kw: float) -> float:
    settings = {"per_second": 1.0, "full_page": 2.0, "half_page": 1.0} | kw
    return shape_seconds(pages, **settings)  # type: ignore[arg-type]


def test_windows_of_one_page_end_with_their_first_page() -> None:
    """Three part-filled windows: requests at 0, 1 and 2 s, the last back a half page later."""
    assert bound([0.4, 0.4, 0.4]) == pytest.approx(3.0)
    assert bound([1.0]) == pytest.approx(2.0)  # one full page


def test_a_window_is_known_only_after_its_first_page() -> None:
    """3.5 pages at 10 requests a second: the first page (2 s) is needed before any cut;
    then four parts of 0.625 pages (an eighth of a full page, then half a page: 1.25 s)
    whose 4.5 requests go at 10 a second after the first page is back: 2 + 0.35 + 1 s."""
    assert bound([3.5], per_second=10.0) == pytest.approx(3.35, rel=1e-6)
    # two in flight at most, one request a second: two parts of 1.25 pages, whose 3.5
    # requests after the first page take 2.5 s, the last half a page: 2 + 2.5 + 1 s
    assert bound([3.5], per_second=10.0, concurrency=2) == pytest.approx(5.5, rel=1e-6)


def test_the_rests_share_the_budget_once_a_first_page_is_back() -> None:
    """Two such windows: their rests (three and four parts, 10.5 requests in all, 8.5 after
    the first pages) go at 10 a second from 2 s on, the last half a page: 2 + 0.75 + 1 s."""
    assert bound([3.5, 3.5], per_second=10.0) == pytest.approx(3.75, rel=1e-6)


def test_the_budget_binds_and_each_part_costs_half_a_request() -> None:
    """30.5 pages at one request a second, 1 s a page: unsplit, 31 requests end at 30.5 s,
    the chain too (29 full pages after the first, then half a page); two parts would add
    half a request and wait for each other's turn of the budget: no cut pays."""
    assert bound([30.5], full_page=1.0, half_page=0.5) == pytest.approx(30.5, rel=1e-6)
    # at half a request a second the chain waits 2 s a page for the budget: 1 + 29 x 2 + 0.5
    # s, inside the budget's 60.5 s
    slow = bound([30.5], per_second=0.5, full_page=1.0, half_page=0.5)
    assert slow == pytest.approx(60.5, rel=1e-6)


def test_the_concurrency_caps_requests_in_flight() -> None:
    """64 windows of one page at 100 a second: at most 8 of 4 s pages in flight is 2 a
    second, so 32 s, not 4 s."""
    free = bound([1.0] * 64, per_second=100.0, full_page=4.0, half_page=2.5, concurrency=1000)
    capped = bound([1.0] * 64, per_second=100.0, full_page=4.0, half_page=2.5, concurrency=8)
    assert free == pytest.approx(4.63, abs=0.01)  # the 64th request at 0.63 s, 4 s a page
    assert capped == pytest.approx(35.5, abs=0.01)  # 63 requests at 2 a second, + 4 s


def test_a_burst_sends_its_requests_at_once() -> None:
    assert bound([0.4] * 4, burst=4) == pytest.approx(1.0)
    assert bound([0.4] * 4) == pytest.approx(4.0)
