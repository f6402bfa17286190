# ruff: noqa: F811 (test arguments are the fixtures imported from sync_fixtures)
"""Sync under clocks that run ahead or step back, and the lag metric while passes fail."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from vccasync import VccClient
from vccasync._errors import InvalidRequestError
from vccasync.fake._timeline import FakeClock
from vccasync.stores._output import open_state
from vccasync.sync import PassResult, Span, SyncEngine
from vccasync.sync._diff import plan_span
from vccasync.sync._metrics import SyncMetrics

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


def test_a_coverage_ending_after_now_counts_as_ending_now() -> None:
    ahead = Span(SINCE, T0 + timedelta(days=2))  # a pass ran with the clock two days ahead
    assert plan_span(ahead, since=None, lookback=LOOKBACK, now=T0) == Span(T0 - LOOKBACK, T0)
    assert plan_span(ahead, since=SINCE, lookback=LOOKBACK, now=T0) == Span(T0 - LOOKBACK, T0)
    future = Span(T0 + timedelta(days=1), T0 + timedelta(days=2))  # all of it after now
    assert plan_span(future, since=None, lookback=LOOKBACK, now=T0) == Span(T0 - LOOKBACK, T0)
    earlier = SINCE - timedelta(days=1)  # an earlier --since still extends history backwards
    assert plan_span(future, since=earlier, lookback=LOOKBACK, now=T0) == Span(earlier, T0)
    with pytest.raises(InvalidRequestError, match="in the future"):  # a first --since is input
        plan_span(None, since=T0 + timedelta(hours=1), lookback=LOOKBACK, now=T0)


class SteppingClock:
    """A clock tests set anywhere, backwards too."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "sync.sqlite")
    return str(request.getfixturevalue("pg_dsn"))


async def test_a_pass_with_the_clock_ahead_never_blocks_later_passes(
    vcc: VccClient, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    steps = SteppingClock(T0 + timedelta(days=3))  # the host's clock three days ahead
    engine = SyncEngine(vcc, since=SINCE, lookback=LOOKBACK, now=steps.now)
    async with await open_state(target, engine.filters, engine.limit) as state:
        engine.state = state
        first = [change async for change in engine.changes(once=True)]
        assert first and engine.last is not None
        steps.at = T0  # the clock is put right: a step back of three days
        with caplog.at_level(logging.WARNING, "vccasync.sync"):
            for _ in range(2):
                again = [change async for change in engine.changes(once=True)]
                assert engine.last is not None
                assert engine.last.span == Span(T0 - LOOKBACK, T0)
                assert again == []  # nothing changed upstream, nothing reported
        assert await state.coverage() == Span(SINCE, T0)
    warned = [r for r in caplog.records if "after now" in r.getMessage()]
    assert len(warned) == 1  # one warning, then the coverage ends at now again


def result_up_to(end: datetime) -> PassResult:
    return PassResult(Span(end - LOOKBACK, end), 0, 0, 0, 0, 1, 0, 0.1)


def behind(metrics: SyncMetrics) -> float | None:
    return metrics.registry.get_sample_value("vccasync_sync_seconds_behind", {})


def test_seconds_behind_keeps_growing_while_passes_fail() -> None:
    clock = FakeClock(T0)
    metrics = SyncMetrics(now=clock.now)
    assert behind(metrics) == 0  # nothing known yet
    metrics.complete_up_to(T0 - timedelta(minutes=5))  # where the store stood at start
    assert behind(metrics) == 300
    metrics.pass_done(result_up_to(T0), T0)
    assert behind(metrics) == 0
    for _ in range(3):  # passes fail, an hour apart
        clock.advance(timedelta(hours=1))
        metrics.pass_stopped(requests=1, rate_limited=0)
    assert behind(metrics) == 3 * 3600  # scraped now, not frozen at the last complete pass
    metrics.pass_done(result_up_to(clock.now() - timedelta(seconds=10)), clock.now())
    assert behind(metrics) == 10
