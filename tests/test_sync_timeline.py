# ruff: noqa: F811 (test arguments are the fixtures imported from sync_fixtures)
"""The fake API's time-varying data: late content, updates, removals, interactions to come."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from vccasync import VccClient
from vccasync._converter import to_api
from vccasync._errors import NotFoundError
from vccasync._instants import parse_instant
from vccasync.fake._dataset import Dataset
from vccasync.fake._timeline import FakeClock, Timeline, demo_spec, reveal

from .conftest import api_shape
from .sync_fixtures import (  # noqa: F401 (the fixtures are used by name)
    CHANGING,
    SPEC,
    T0,
    clock,
    dataset,
    fake,
    timeline,
    vcc,
)

SCHEDULE = CHANGING


def test_schedule_is_deterministic_and_bounded(dataset: Dataset, clock: FakeClock) -> None:
    one = Timeline.for_dataset(dataset, clock, SCHEDULE)
    two = Timeline.for_dataset(dataset, FakeClock(T0), SCHEDULE)
    items = list(dataset.visible())
    assert one.view_all(items) == two.view_all(items)
    for item in items:
        start = parse_instant(item["start"])
        for piece in item["content"]:
            revealed = one.revealed_at(start, item["guid"], piece["contentKey"])
            assert start <= revealed <= start + SCHEDULE.settle
            updated = one.updated_at(start, item["guid"], piece["contentKey"])
            assert updated is None or revealed < updated <= start + SCHEDULE.settle + timedelta(
                seconds=1
            )
        gone = one.removed_at(item["guid"])
        assert gone is None or T0 <= gone <= T0 + SCHEDULE.removal_within
    for item in items:  # settled and not removed yet (removals start at the origin): all shown
        if parse_instant(item["start"]) < T0 - SCHEDULE.settle:
            shown = one.view(item)
            assert shown is not None
            assert [p["contentKey"] for p in shown["content"]] == [
                p["contentKey"] for p in item["content"]
            ]


def test_without_a_timeline_nothing_changes(dataset: Dataset) -> None:
    items = [dataset.item(p) for p in range(10)]
    assert reveal(None, items) is items


def test_time_reveals_updates_removes_and_adds(dataset: Dataset, timeline: Timeline) -> None:
    clock = timeline.clock
    items = list(dataset.visible())
    before = {i["guid"]: i for i in timeline.view_all(items)}
    assert all(parse_instant(i["start"]) <= T0 for i in before.values())
    clock.advance(SCHEDULE.settle + SCHEDULE.removal_within)
    after = {i["guid"]: i for i in timeline.view_all(items)}
    later = [g for g in after if parse_instant(after[g]["start"]) > T0]
    assert later  # new interactions appeared near "now"
    gone = set(before) - set(after)
    assert gone and all(timeline.removed_at(g) is not None for g in gone)
    grown = [g for g in set(before) & set(after) if after[g] != before[g]]
    assert grown
    for guid in grown:
        keys_before = {p["contentKey"]: p for p in before[guid]["content"]}
        for piece in after[guid]["content"]:
            old = keys_before.get(piece["contentKey"])
            if old is not None and old != piece:  # an update: a new instant, a new version
                assert parse_instant(piece["lastModified"]) > parse_instant(old["lastModified"])
                assert (
                    piece["properties"] != old["properties"]
                    or piece["contentLength"] == old["contentLength"] + 1
                )


async def test_the_api_hides_what_is_not_revealed(
    vcc: VccClient, dataset: Dataset, timeline: Timeline
) -> None:
    hidden = next(
        i
        for i in dataset.visible()
        if timeline.view(i) is None
        and timeline.removed_at(i["guid"]) is None
        and parse_instant(i["start"]) <= T0
    )
    with pytest.raises(NotFoundError):
        await vcc.interaction(hidden["guid"])
    partial = next(
        i
        for i in dataset.visible()
        if (shown := timeline.view(i)) is not None and len(shown["content"]) < len(i["content"])
    )
    shown = timeline.view(partial)
    assert shown is not None
    missing = next(p for p in partial["content"] if p not in shown["content"])
    assert to_api(await vcc.interaction(partial["guid"])) == api_shape(shown)
    with pytest.raises(NotFoundError):
        await vcc.download(partial["guid"], missing["contentKey"], io.BytesIO())
    timeline.clock.advance(SCHEDULE.settle)
    assert (await vcc.interaction(hidden["guid"])).guid == hidden["guid"]


async def test_search_pages_may_be_short(
    vcc: VccClient, dataset: Dataset, timeline: Timeline
) -> None:
    start, end = SPEC.start, T0
    got = [to_api(i) async for i in vcc.interactions(start, end, limit=7)]
    assert got == [api_shape(i) for i in timeline.expected(dataset, start, end)]


def test_demo_data_is_around_today() -> None:
    now = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    spec = demo_spec(now, days=10)
    assert spec.start == datetime(2026, 11, 15, tzinfo=UTC)
    assert spec.start < now < spec.end == datetime(2026, 11, 27, tzinfo=UTC)
    assert not FakeClock().manual and FakeClock(now).manual
    with pytest.raises(ValueError, match="cannot be advanced"):
        FakeClock().advance(timedelta(1))
