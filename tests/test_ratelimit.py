"""The adaptive budget: cut once per 429 episode, creep back, never past the configured rate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from vccasync._config import ClientConfig
from vccasync._errors import InvalidRequestError
from vccasync._http.ratelimit import DECREASE, MIN_FRACTION, RateLimiter
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate

from .conftest import client_for


async def test_a_429_episode_cuts_the_rate_once() -> None:
    limiter = RateLimiter(600)
    assert limiter.current_per_minute == pytest.approx(600)
    limiter.slow_down()
    limiter.pause(0.2)
    assert limiter.current_per_minute == pytest.approx(600 * DECREASE)
    limiter.slow_down()  # another 429 of the same episode (sent before the first was seen)
    assert limiter.current_per_minute == pytest.approx(600 * DECREASE)
    await limiter.wait_out_pause()
    limiter.slow_down()  # a new episode
    assert limiter.current_per_minute == pytest.approx(600 * DECREASE**2)


async def test_the_rate_has_a_floor() -> None:
    limiter = RateLimiter(160)
    for _ in range(40):
        limiter.slow_down()
    assert limiter.current_per_minute == pytest.approx(160 * MIN_FRACTION)


async def test_successes_creep_back_up_to_the_configured_rate_and_no_further() -> None:
    limiter = RateLimiter(600)
    limiter.speed_up()
    assert limiter.current_per_minute == pytest.approx(600)  # never beyond the configured rate
    limiter.slow_down()
    cut = limiter.current_per_minute
    assert cut is not None
    await asyncio.sleep(0.05)
    limiter.speed_up()
    crept = limiter.current_per_minute
    assert crept is not None and cut < crept < 600
    for _ in range(400):
        limiter._grown_at -= 1.0  # as if a second of successes had passed each time
        limiter.speed_up()
    assert limiter.current_per_minute == pytest.approx(600)


async def test_no_limit_means_no_spacing() -> None:
    limiter = RateLimiter(None)
    limiter.slow_down()
    limiter.speed_up()
    assert limiter.per_minute is None and limiter.current_per_minute is None
    async with asyncio.timeout(1):
        for _ in range(1000):
            await limiter.acquire()


async def test_a_lowered_rate_spaces_requests_further() -> None:
    limiter = RateLimiter(6000)  # one every 10 ms
    for _ in range(8):
        limiter.slow_down()
        limiter._resume_at = 0  # separate episodes, no pause
    rate = limiter.current_per_minute
    assert rate is not None and rate < 6000 * 0.11
    loop = asyncio.get_running_loop()
    began = loop.time()
    for _ in range(6):
        await limiter.acquire()
    assert loop.time() - began >= 5 * 60 / rate * 0.9


@pytest.mark.slow
async def test_a_client_set_above_the_accounts_limit_draws_few_429s() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    dataset = generate(DatasetSpec(seed=5, start=start, days=7, per_day=1500))
    # the account allows 30 requests a second; the client was told 120
    config = FakeConfig(rate_limit_per_minute=30, rate_limit_window=1.0)
    async with FakeVccServer(dataset, config) as fake:
        async with client_for(fake, requests_per_minute=7200, max_attempts=8) as vcc:
            got = [
                i.guid async for i in vcc.interactions(start, start + timedelta(days=7), limit=50)
            ]
            rate = vcc.session.limiter.current_per_minute
        stats = fake.stats
    assert len(got) == len(set(got)) == len(dataset.expected(start, start + timedelta(days=7)))
    assert stats.search_requests > 150, stats.rate_limited
    assert stats.rate_limited <= stats.search_requests // 10  # a few, not a storm
    assert rate is not None and rate < 7200 * DECREASE  # it learnt a lower rate


@pytest.mark.parametrize("burst", [1, 4])
async def test_a_burst_lets_that_many_requests_through_at_once(burst: int) -> None:
    limiter = RateLimiter(6, burst=burst)  # one request every 10 s after the burst
    async with asyncio.timeout(5):
        for _ in range(burst):
            await limiter.acquire()
    late = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not late.done()  # the next one waits for the rate
    late.cancel()


def test_a_burst_is_a_whole_number_of_at_least_one() -> None:
    assert ClientConfig(client_id="a", client_secret="b", burst=4).burst == 4
    with pytest.raises(InvalidRequestError, match="burst"):
        ClientConfig(client_id="a", client_secret="b", burst=0)
