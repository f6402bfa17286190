"""Splitter properties: no gap, no window beyond 7 days, only boundary instants shared."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vccasync.windows import MAX_SPAN, RESOLUTION, Window, split

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
