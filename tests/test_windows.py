"""Splitter properties: no gap, no window beyond 7 days, only boundary instants shared."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vccasync._windows import (
    MAX_SPAN,
    RESOLUTION,
    Window,
    floor_instant,
    split,
    split_at,
    sub_window_count,
)

moments = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))
max_spans = st.sampled_from([MAX_SPAN, timedelta(days=1), timedelta(hours=1, milliseconds=7)])


@settings(max_examples=300)
@given(start=moments, span=spans, max_span=max_spans)
def test_windows_cover_the_range_without_gap_or_overlap(
    start: datetime, span: timedelta, max_span: timedelta
) -> None:
    end = start + span
    windows = split(start, end, max_span)
    assert windows[0].start <= start and windows[0].start > start - RESOLUTION
    assert windows[-1].closed and windows[-1].end >= end
    assert not any(w.closed for w in windows[:-1])
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start  # shared boundary instant, nothing between
    for window in windows:
        assert window.start <= window.end
        assert window.query_end - window.start <= max_span  # the API's limit, strictly kept


@settings(max_examples=200)
@given(start=moments, span=spans, offset=st.floats(min_value=0, max_value=1))
def test_every_instant_is_owned_by_exactly_one_window(
    start: datetime, span: timedelta, offset: float
) -> None:
    end = start + span
    windows = split(start, end)
    probes = [
        start,
        end,
        start + span * offset,
        *(w.start for w in windows),
        *(w.end for w in windows),
    ]
    for moment in probes:
        if start <= moment <= end:
            owners = [w for w in windows if w.owns(moment)]
            assert len(owners) == 1, (moment, owners)
            queried = [w for w in windows if w.start <= moment <= w.query_end]
            assert owners[0] in queried  # the owner asks the API for it under either reading


def test_boundary_instant_is_in_two_queries_but_owned_once() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    first, second, third = split(start, start + timedelta(days=15))
    edge = first.end
    assert first.query_end == edge == second.start  # an inclusive server returns it twice
    assert not first.owns(edge) and second.owns(edge)
    assert third.closed and third.owns(start + timedelta(days=15))
    assert third.query_end == start + timedelta(days=15) + RESOLUTION  # exclusive reading too


def test_key_round_trip_and_order() -> None:
    windows = split(
        datetime(2025, 1, 1, 0, 0, 0, 250000, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    )
    assert [Window.from_key(w.key) for w in windows] == windows
    assert sorted(reversed(windows)) == windows


def test_rejects_end_before_start() -> None:
    start = datetime(2025, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError):
        split(start, start - timedelta(seconds=1))


@settings(max_examples=300)
@given(
    start=moments,
    span=st.timedeltas(min_value=timedelta(milliseconds=2), max_value=MAX_SPAN),
    at=st.floats(min_value=0.0, max_value=1.0),
    inner=st.lists(st.floats(min_value=-0.5, max_value=1.5), max_size=12),
    closed=st.booleans(),
)
def test_split_at_owns_exactly_the_rest_at_any_inner_instants(
    start: datetime, span: timedelta, at: float, inner: list[float], closed: bool
) -> None:
    window = split(start, start + span)[0]
    window = Window(window.start, window.end, closed)
    ticks = (window.end - window.start) // RESOLUTION
    cut = window.start + RESOLUTION * max(1, min(ticks - 1, round(ticks * at)))
    # any instants, unsorted, outside the rest, with microseconds: the profile's quantiles
    moments_inside = [cut + (window.end - cut) * f for f in inner]
    subs = split_at(window, cut, moments_inside)
    assert subs[0].start == cut and subs[-1].end == window.end
    assert subs[-1].closed == closed and not any(w.closed for w in subs[:-1])
    for a, b in itertools.pairwise(subs):
        assert a.end == b.start and a.start < a.end
        assert floor_instant(a.end) == a.end  # whole milliseconds only
    for moment in [cut - RESOLUTION, cut, *(w.start for w in subs), window.end]:
        owners = sum(w.owns(moment) for w in subs)
        assert owners == (1 if window.owns(moment) and moment >= cut else 0)


def test_split_at_refuses_a_cut_outside_the_window() -> None:
    window = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC))
    for cut in (window.start, window.end, window.start + timedelta(microseconds=1500)):
        with pytest.raises(ValueError, match="cut"):
            split_at(window, cut, [window.start + timedelta(hours=12)])


@pytest.mark.parametrize(
    ("items", "hours_seen", "hours_left", "spare", "want"),
    [
        (1000, 1, 10, 3, 4),  # ten pages left, three chains to spare: four sub-windows
        (1000, 1, 10, 20, 5),  # never less than two pages each
        (1000, 1, 3.5, 5, 1),  # under four pages left: not worth a split
        (1000, 1, 10, 0, 1),  # the budget is in use already
        (600, 2, 48, 8, 7),  # a page of 1,000 that came back with 600 (filters): density
    ],
)
def test_sub_window_count_follows_density_and_spare_budget(
    items: int, hours_seen: float, hours_left: float, spare: int, want: int
) -> None:
    first = datetime(2025, 1, 1, tzinfo=UTC)
    cut = first + timedelta(hours=hours_seen)
    end = cut + timedelta(hours=hours_left)
    got = sub_window_count(first=first, cut=cut, items=items, end=end, page_size=1000, spare=spare)
    assert got == want
