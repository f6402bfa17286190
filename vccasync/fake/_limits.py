"""Sliding-window request limit, like the API's per-account fair-usage limit."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most ``limit`` accepted requests in any ``window`` seconds."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._accepted: deque[float] = deque()

    def acquire(self) -> float | None:
        """Accept a request (None), or refuse it: seconds until a slot frees."""
        now = self._clock()
        while self._accepted and self._accepted[0] <= now - self.window:
            self._accepted.popleft()
        if len(self._accepted) >= self.limit:
            return self._accepted[0] + self.window - now
        self._accepted.append(now)
        return None
