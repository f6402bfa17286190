# ruff: noqa: F811 (test arguments are the fixtures imported from sync_fixtures)
"""The sync engine end to end against the fake API with time-varying data (manual clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from vccasync import VccClient
from vccasync._converter import to_api
from vccasync._errors import AuthenticationError, InvalidRequestError
from vccasync._instants import parse_instant
from vccasync.fake import FakeConfig, FakeVccServer
from vccasync.fake._dataset import Dataset
from vccasync.fake._timeline import FakeClock, Timeline
from vccasync.sync import Change, MemoryState, Span, SyncEngine
from vccasync.sync._metrics import SyncMetrics

from .conftest import api_shape, client_for
from .sync_fixtures import (  # noqa: F401 (the fixtures are used by name)
    LOOKBACK,
    SINCE,
    T0,
    clock,
    dataset,
    fake,
    timeline,
    vcc,
)

View = dict[str, dict[str, Any]]


def view(timeline: Timeline, dataset: Dataset, span: Span, **filters: Any) -> View:
    """The API's current view of ``span``, by guid, as vccasync writes it back."""
    return {
        item["guid"]: api_shape(item)
        for item in timeline.expected(dataset, span.start, span.end, **filters)
    }


def expected_changes(before: View, after: View, span: Span) -> dict[str, set[str]]:
    """What a pass over ``span`` must report, from two views of the API (no engine code)."""
    inside = {g for g, item in before.items() if parse_instant(item["start"]) in span}
    return {
        "new": set(after) - set(before),
        "changed": {g for g in set(after) & set(before) if after[g] != before[g]},
        "removed": inside - set(after),
    }


def by_kind(changes: list[Change]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"new": set(), "changed": set(), "removed": set()}
    for change in changes:
        out[change.kind].add(change.interaction.guid)
    return out


async def one_pass(engine: SyncEngine) -> list[Change]:
    return [change async for change in engine.changes(once=True)]


def engine_for(vcc: VccClient, clock: FakeClock, **options: Any) -> SyncEngine:
    return SyncEngine(vcc, **{"since": SINCE, "lookback": LOOKBACK, "now": clock.now, **options})


async def test_passes_report_exactly_what_changed(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock
) -> None:
    metrics = SyncMetrics(now=clock.now)
    engine = engine_for(vcc, clock, observer=metrics)
    first = await one_pass(engine)
    seen = view(timeline, dataset, Span(SINCE, T0))
    assert {c.kind for c in first} == {"new"}
    assert [c.interaction.guid for c in first] == list(seen)  # chronological, each once
    assert [to_api(c.interaction) for c in first] == list(seen.values())
    assert engine.last is not None and engine.last.new == len(seen) > 300
    assert engine.last.complete_up_to == T0

    clock.advance(timedelta(hours=3))
    span = Span(T0 - LOOKBACK, T0 + timedelta(hours=3))  # last complete end - lookback .. now
    now_view = view(timeline, dataset, span)
    want = expected_changes(seen, now_view, span)
    assert all(want.values()), want  # the data really changed in every way
    second = await one_pass(engine)
    assert by_kind(second) == want
    assert len(second) == sum(map(len, want.values()))  # each change once
    for change in second:
        shown = seen if change.kind == "removed" else now_view
        assert to_api(change.interaction) == shown[change.interaction.guid]
        if change.kind == "changed":
            assert change.previous is not None
            assert to_api(change.previous) == seen[change.interaction.guid]
    result = engine.last
    assert result is not None and result.span == span
    assert (result.new, result.changed, result.removed) == tuple(
        len(want[k]) for k in ("new", "changed", "removed")
    )
    assert result.unchanged == len(now_view) - result.new - result.changed
    assert result.requests >= 1 and "complete up to 2026-11-20T15:00:00Z" in result.summary()

    assert await one_pass(engine) == []  # nothing moved: nothing to report
    counted = metrics.registry.get_sample_value
    assert counted("vccasync_sync_passes_total", {"outcome": "complete"}) == 3
    assert counted("vccasync_sync_interactions_total", {"kind": "removed"}) == result.removed
    assert counted("vccasync_sync_seconds_behind") == 0  # the fake's clock stood still
    assert engine.last is not None and engine.last.span == Span(span.end - LOOKBACK, span.end)
    assert engine.last.unchanged == len(view(timeline, dataset, engine.last.span))


async def test_memory_is_bounded_by_the_lookback_span(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock
) -> None:
    state = MemoryState()
    engine = engine_for(vcc, clock, state=state)
    await one_pass(engine)
    assert len(state) == len(view(timeline, dataset, Span(T0 - LOOKBACK, T0)))
    assert len(state) < len(view(timeline, dataset, Span(SINCE, T0))) / 2


async def test_the_feed_yields_each_change_once_pass_after_pass(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, clock: FakeClock
) -> None:
    collected: list[Change] = []
    passes: list[tuple[list[Change], Span, View]] = []  # changes, span, the API's view then

    async def tick(_: float) -> None:  # between passes: the fake's time moves on
        assert engine.last is not None
        span = engine.last.span
        passes.append((list(collected), span, view(timeline, dataset, span)))
        collected.clear()
        clock.advance(timedelta(hours=2))

    engine = engine_for(vcc, clock, sleep=tick)
    feed = engine.changes(every="5m")
    async for change in feed:
        collected.append(change)
        if len(passes) == 4:
            break
    await feed.aclose()
    first, span, seen = passes[0]
    assert span == Span(SINCE, T0) and by_kind(first) == {
        "new": set(seen),
        "changed": set(),
        "removed": set(),
    }
    for n in range(1, len(passes)):
        changes, span, after = passes[n]
        assert span == Span(T0 + timedelta(hours=2 * (n - 1)) - LOOKBACK, clock_at(n))
        before = {g: i for g, i in seen.items() if parse_instant(i["start"]) >= span.start}
        assert by_kind(changes) == expected_changes(before, after, span)
        assert len(changes) == len({c.interaction.guid for c in changes})
        seen = after


def clock_at(n: int) -> datetime:
    return T0 + timedelta(hours=2 * n)


async def test_a_pass_cut_short_marks_nothing_removed(
    dataset: Dataset, timeline: Timeline, clock: FakeClock
) -> None:
    held, release = asyncio.Event(), asyncio.Event()
    searches = 0

    @web.middleware
    async def gate(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        nonlocal searches
        if request.path.endswith("/interactions"):
            searches += 1
            if searches == gated:
                held.set()
                await release.wait()
        return await handler(request)

    gated = 0
    fake = FakeVccServer(dataset, FakeConfig(timeline=timeline))
    fake.app.middlewares.append(gate)
    async with fake, client_for(fake, concurrency=1) as vcc:
        metrics = SyncMetrics()
        engine = engine_for(vcc, clock, lookback="48h", limit=50, observer=metrics)
        before = view(timeline, dataset, Span(SINCE, T0))
        await one_pass(engine)
        coverage = await engine.state.coverage()
        clock.advance(timedelta(hours=3))
        gated = searches + 2  # hold the pass at its second page
        got: list[Change] = []

        async def consume() -> None:
            async for change in engine.changes(once=True):
                got.append(change)

        task = asyncio.create_task(consume())
        await held.wait()
        tasks_before = {t for t in asyncio.all_tasks() if "Scheduler._fetch" in repr(t.get_coro())}
        assert tasks_before  # the search's window task is running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert all(t.done() for t in tasks_before)  # no task left behind
        assert {c.kind for c in got} <= {"new", "changed"}  # no removal from a cut pass
        assert await engine.state.coverage() == coverage
        assert (
            metrics.registry.get_sample_value(
                "vccasync_sync_passes_total", {"outcome": "incomplete"}
            )
            == 1
        )
        release.set()

        span = Span(T0 - timedelta(hours=48), T0 + timedelta(hours=3))
        after = view(timeline, dataset, span)
        rest = await one_pass(engine)
        want = expected_changes(before, after, span)
        reported = by_kind(got + rest)
        assert reported == want and want["removed"]
        assert len(got) + len(rest) == sum(map(len, want.values()))  # none twice


@pytest.mark.parametrize(
    "filters",
    [{"direction": "outbound"}, {"connect_to": "0800"}, {"handling_agent_id": "1342"}],
)
async def test_filters_are_honoured(
    vcc: VccClient, dataset: Dataset, timeline: Timeline, filters: dict[str, str]
) -> None:
    got = [c async for c in vcc.changes(SINCE, once=True, **filters)]
    want = view(timeline, dataset, Span(SINCE, T0), **filters)
    assert want and [c.interaction.guid for c in got] == list(want)
    assert {c.kind for c in got} == {"new"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lookback": "soon"}, "lookback must look like"),
        ({"every": "-5m"}, "every must look like"),
        ({"direction": "sideways"}, "direction must be"),
        ({"connect_from": ""}, "connect_from must be 1 to"),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    vcc: VccClient, fake: FakeVccServer, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        vcc.changes(SINCE, **options)
    assert fake.stats.requests == 0


async def test_a_future_since_is_refused(vcc: VccClient, clock: FakeClock) -> None:
    engine = SyncEngine(vcc, since=T0 + timedelta(days=1), now=clock.now)
    with pytest.raises(InvalidRequestError, match="in the future"):
        await one_pass(engine)


async def test_a_transient_failure_is_logged_and_the_next_pass_retries(
    dataset: Dataset, timeline: Timeline, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    failures = 1

    @web.middleware
    async def fail_once(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        nonlocal failures
        if request.path.endswith("/interactions") and failures:
            failures -= 1
            return web.json_response({"message": "unavailable"}, status=503)
        return await handler(request)

    fake = FakeVccServer(dataset, FakeConfig(timeline=timeline))
    fake.app.middlewares.append(fail_once)
    ticks = 0

    class Stop(Exception):
        pass

    async def tick(_: float) -> None:  # the second wait ends the test
        nonlocal ticks
        ticks += 1
        if ticks == 2:
            raise Stop

    got: list[Change] = []
    async with fake, client_for(fake, max_attempts=1) as vcc:
        engine = engine_for(vcc, clock, sleep=tick)
        with pytest.raises(Stop):
            async for change in engine.changes(every="1m"):
                got.append(change)
    logged = [r.getMessage() for r in caplog.records if r.name == "vccasync.sync"]
    assert logged[0].startswith("sync pass failed, retrying at the next pass: ")
    assert [c.interaction.guid for c in got] == list(view(timeline, dataset, Span(SINCE, T0)))


async def test_refused_credentials_end_the_feed(fake: FakeVccServer) -> None:
    wrong = VccClient(
        client_id=fake.client_id,
        client_secret="wrong",
        api_url=fake.api_url,
        auth_url=fake.auth_url,
    )
    async with wrong as vcc:
        with pytest.raises(AuthenticationError):
            async for _ in vcc.changes(SINCE, every="1m"):
                pytest.fail("no change without credentials")
