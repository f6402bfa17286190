"""Pure parts of sync: fingerprints, pass spans, classification, the in-memory state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vccasync._converter import structure_interaction
from vccasync._errors import InvalidRequestError
from vccasync._models import Content, ContentProperties, Interaction
from vccasync._windows import Page, Window
from vccasync.sync import Known, MemoryState, Observed, Span
from vccasync.sync._diff import classify, plan_span, removed
from vccasync.sync._fingerprint import changed_pieces, fingerprint, snapshot

T = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def piece(key: str, **changes: object) -> Content:
    base = Content(
        content_key=key,
        type="transcript",
        content_type="application/json",
        content_length=100,
        last_modified=T,
        properties=ContentProperties(version=1),
    )
    return attrs.evolve(base, **changes)


def interaction(*pieces: Content, guid: str = "g-1", **changes: object) -> Interaction:
    base = Interaction(guid=guid, start=T, connect_from="01473", direction="inbound")
    return attrs.evolve(base, content=pieces, **changes)


ONE = interaction(piece("a"), piece("b"))


def test_piece_order_does_not_matter_and_json_keeps_it() -> None:
    swapped = interaction(piece("b"), piece("a"))
    assert fingerprint(swapped) == fingerprint(ONE)
    data, _ = snapshot(swapped)
    assert structure_interaction(json.loads(data)) == swapped


@pytest.mark.parametrize(
    "other",
    [
        interaction(piece("a")),  # a piece gone
        interaction(piece("a"), piece("b"), piece("c")),  # a piece added
        interaction(piece("a"), piece("b", last_modified=T + DAY)),
        interaction(piece("a"), piece("b", content_length=101)),
        interaction(piece("a"), piece("b", properties=ContentProperties(version=2))),
        interaction(piece("a"), piece("b", extra={"language": "en-GB"})),
        interaction(piece("a"), piece("b"), connect_to="22222"),
        interaction(piece("a"), piece("b"), extra={"sentimentScore": 0.5}),
    ],
)
def test_every_change_changes_the_fingerprint(other: Interaction) -> None:
    assert fingerprint(other) != fingerprint(ONE)
    assert len(fingerprint(other)) == 16


def test_changed_pieces_are_the_new_and_different_ones() -> None:
    now = interaction(piece("a"), piece("b", content_length=7), piece("c"))
    assert [p.content_key for p in changed_pieces(now, ONE)] == ["b", "c"]
    assert changed_pieces(now, None) == now.content
    assert changed_pieces(ONE, ONE) == ()


@given(st.permutations(["a", "b", "c", "d"]), st.integers(1, 10**9))
def test_fingerprint_is_stable(keys: list[str], length: int) -> None:
    pieces = [piece(k, content_length=length) for k in keys]
    assert fingerprint(interaction(*pieces)) == fingerprint(interaction(*sorted(pieces, key=str)))


def test_first_span_needs_since_and_ends_now() -> None:
    assert plan_span(None, since=T - DAY, lookback=DAY, now=T) == Span(T - DAY, T)
    with pytest.raises(InvalidRequestError, match="needs a start"):
        plan_span(None, since=None, lookback=DAY, now=T)
    with pytest.raises(InvalidRequestError, match="in the future"):
        plan_span(None, since=T + DAY, lookback=DAY, now=T)


@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 100), st.integers(0, 100))
def test_later_spans_start_lookback_before_the_last_end(
    covered_hours: int, lookback_hours: int, later_hours: int, since_hours: int
) -> None:
    coverage = Span(T - timedelta(hours=covered_hours), T)
    lookback, now = timedelta(hours=lookback_hours), T + timedelta(hours=later_hours)
    since = T - timedelta(hours=since_hours)
    span = plan_span(coverage, since=since, lookback=lookback, now=now)
    assert span.end == now
    if since < coverage.start:  # an earlier since extends history backwards
        assert span.start == since
    else:
        assert span.start == max(coverage.start, T - lookback)
    assert plan_span(coverage, since=None, lookback=lookback, now=now).start == max(
        coverage.start, T - lookback
    )


def known(guid: str, start: datetime, print_: bytes = b"x", *, gone: bool = False) -> Known:
    return Known(guid, start, print_, b"{}", removed=gone)


def test_classify() -> None:
    assert classify(b"x", None) == "new"
    assert classify(b"x", known("g", T, gone=True)) == "new"  # back after a removal
    assert classify(b"x", known("g", T)) is None
    assert classify(b"y", known("g", T)) == "changed"


def test_removed_judges_only_the_span() -> None:
    span = Span(T - DAY, T)
    rows = [
        known("before", T - 2 * DAY),
        known("edge", T - DAY),
        known("seen", T - DAY / 2),
        known("gone", T),
        known("already", T, gone=True),
        known("after", T + DAY),
    ]
    assert [k.guid for k in removed(rows, span, {"seen"})] == ["edge", "gone"]


async def test_memory_state_forgets_what_will_not_be_judged_again() -> None:
    state = MemoryState()
    old, recent = interaction(guid="old", start=T - 2 * DAY), interaction(guid="recent")
    span = Span(T - 3 * DAY, T)
    assert await state.begin(span) == (span, None)
    page = Page(Window(span.start, span.end), [old, recent], None)
    observed = [Observed(i, fingerprint(i), snapshot(i)[0], "new") for i in (old, recent)]
    await state.record(page, observed)
    assert set(await state.known(["old", "recent", "other"])) == {"old", "recent"}
    assert await state.unseen(span) == []
    await state.finish(span, [], keep_from=T - DAY)
    assert await state.coverage() == span
    assert set(await state.known(["old", "recent"])) == {"recent"} and len(state) == 1
    await state.begin(Span(T - DAY, T + DAY))
    gone = await state.unseen(Span(T - DAY, T + DAY))
    assert [k.guid for k in gone] == ["recent"]
    await state.finish(Span(T - DAY, T + DAY), ["recent"], keep_from=T)
    assert len(state) == 0 and await state.coverage() == Span(T - 3 * DAY, T + DAY)
