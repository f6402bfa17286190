"""One request budget for the whole client: a steady rate that adapts, plus a global pause.

The rate starts at the configured requests per minute. A 429 means the whole account is
over its limit: every request pauses (``pause``), and the rate is cut multiplicatively, once
per episode (``slow_down``); requests that then succeed win it back additively over time
(``speed_up``), more slowly close to the rate that drew the last 429, never beyond the
configured rate. A wrong guess of the account's limit therefore costs a few 429s, not a storm.
Spacing is asynciolimiter's ``Limiter``, whose rate can be changed while requests wait.
"""

from __future__ import annotations

import asyncio

from asynciolimiter import LeakyBucketLimiter, Limiter

__all__ = ["DECREASE", "INCREASE", "MIN_FRACTION", "NEAR_LIMIT", "RateLimiter"]

DECREASE = 0.75  # a 429 episode cuts the rate to this fraction
INCREASE = 0.02  # per second of successes, this fraction of the configured rate comes back
NEAR_LIMIT = 0.9  # above this fraction of the rate that drew the last 429, creep 4x slower
MIN_FRACTION = 1 / 16  # the rate never falls below this fraction of the configured one


class RateLimiter:
    """Spaces requests to ``per_minute`` (None: no limit) and holds all of them during a pause;
    ``burst`` requests may go at once after an idle spell (an account's burst allowance)."""

    def __init__(self, per_minute: float | None, *, burst: int = 1) -> None:
        self._ceiling = per_minute
        self.burst = burst
        # max_burst=1: a late event loop never lets a burst through; the spacing keeps its
        # schedule, so the average rate is the configured one. A burst: a leaky bucket of that
        # capacity (the first ``burst`` requests at once, then the rate)
        self._spacing: Limiter | LeakyBucketLimiter | None = None
        if per_minute and burst > 1:
            self._spacing = LeakyBucketLimiter(per_minute / 60.0, capacity=burst)
        elif per_minute:
            self._spacing = Limiter(per_minute / 60.0, max_burst=1)
        self._resume_at = 0.0
        self._limit_seen = float("inf")  # requests per second that last drew a 429
        self._grown_at = 0.0

    @property
    def per_minute(self) -> float | None:
        """The configured (highest) rate."""
        return self._ceiling

    @property
    def current_per_minute(self) -> float | None:
        """The rate in force now (lower than configured after a 429, creeping back)."""
        return self._spacing.rate * 60.0 if self._spacing else None

    @property
    def paused(self) -> bool:
        """Whether a pause is in force."""
        return self._resume_at > asyncio.get_running_loop().time()

    def pause(self, seconds: float) -> None:
        """Hold every request of the client for ``seconds`` from now (extends, never shortens)."""
        now = asyncio.get_running_loop().time()
        self._resume_at = max(self._resume_at, now + seconds)

    def slow_down(self) -> None:
        """Cut the rate after a 429 (call before ``pause``: once per episode, not per 429)."""
        if self._spacing is None or self._ceiling is None or self.paused:
            return  # the other 429s of one episode were sent before it was noticed
        floor = self._ceiling / 60.0 * MIN_FRACTION
        self._limit_seen = self._spacing.rate
        self._spacing.rate = max(floor, self._spacing.rate * DECREASE)
        self._grown_at = asyncio.get_running_loop().time()

    def speed_up(self) -> None:
        """Win back a little of the rate after a request the API accepted."""
        if self._spacing is None or self._ceiling is None:
            return
        ceiling, rate = self._ceiling / 60.0, self._spacing.rate
        if rate >= ceiling:
            return
        now = asyncio.get_running_loop().time()
        elapsed, self._grown_at = min(1.0, now - self._grown_at), now
        step = ceiling * INCREASE * elapsed
        if rate >= self._limit_seen * NEAR_LIMIT:
            step /= 4
        self._spacing.rate = min(ceiling, rate + step)

    async def wait_out_pause(self) -> None:
        """Return once no pause is in force."""
        loop = asyncio.get_running_loop()
        while (delay := self._resume_at - loop.time()) > 0:  # noqa: ASYNC110 - may be extended
            await asyncio.sleep(delay)

    async def acquire(self) -> None:
        """Wait for the end of any pause, then for a slot in the budget."""
        loop = asyncio.get_running_loop()
        while True:
            await self.wait_out_pause()
            if self._spacing is not None:
                await self._spacing.wait()
            if self._resume_at <= loop.time():  # no 429 arrived while we queued
                return
