"""One request budget for the whole client: a steady rate plus a global pause after a 429."""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter

__all__ = ["RateLimiter"]


class RateLimiter:
    """Spaces requests to ``per_minute`` (None: no limit) and holds all of them during a pause."""

    def __init__(self, per_minute: float | None) -> None:
        # capacity 1: a leaky bucket that lets one request through every 60/per_minute seconds
        self._bucket = AsyncLimiter(1, 60.0 / per_minute) if per_minute else None
        self._resume_at = 0.0

    @property
    def per_minute(self) -> float | None:
        """The configured rate."""
        return 60.0 / self._bucket.time_period if self._bucket else None

    def pause(self, seconds: float) -> None:
        """Hold every request of the client for ``seconds`` from now (extends, never shortens)."""
        now = asyncio.get_running_loop().time()
        self._resume_at = max(self._resume_at, now + seconds)

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
            if self._bucket is not None:
                await self._bucket.acquire()
            if self._resume_at <= loop.time():  # no 429 arrived while we queued
                return
