"""The progress display's request rate: over the last minute, never above the budget."""

from __future__ import annotations

from vccasync._http.session import SessionStats
from vccasync.cli._progress import RateMeter, Tally
from vccasync.stores._checkpoint import Checkpoint


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_first_request_at_once_does_not_show_above_the_budget() -> None:
    clock, stats = Clock(), SessionStats()
    tally = Tally(Checkpoint({}), stats, budget=160, clock=clock)
    clock.now += 0.1
    stats.requests = 1  # the first request goes at once: 600 a minute over 0.1 s
    assert tally.per_minute == 160
    clock.now += 0.375 * 3
    stats.requests = 4
    assert 0 < tally.per_minute <= 160


def test_the_rate_is_that_of_the_last_minute() -> None:
    clock = Clock()
    meter = RateMeter(budget=None, clock=clock)
    meter.start(0)
    count = 0
    for _ in range(120):  # two minutes at 160 a minute, read every second
        clock.now += 1
        count += 160 // 60 if clock.now % 3 else 160 // 60 + 2  # 160 a minute on average
        rate = meter.per_minute(count)
    assert 150 <= rate <= 170
    for _ in range(60):  # then a minute at 40 a minute (after a 429, say)
        clock.now += 1.5
        count += 1
        rate = meter.per_minute(count)
    assert 38 <= rate <= 42  # the last minute's, not the run's (about 113)
    assert count * 60 / (clock.now - 1000) > 100


def test_an_idle_minute_shows_zero_and_no_budget_shows_the_measure() -> None:
    clock = Clock()
    meter = RateMeter(budget=None, clock=clock)
    meter.start(5)
    clock.now += 30
    assert meter.per_minute(35) == 60.0
    clock.now += 61
    assert meter.per_minute(35) == 0.0
    assert meter.per_minute(35) == 0.0  # read twice at one instant
