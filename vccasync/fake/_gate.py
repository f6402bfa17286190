"""A gate for deterministic interruption tests: hold search and content answers until allowed.

``hold_after(n)`` lets ``n`` more answers through, then holds every further request (inside
the server, after its auth checks) until :meth:`Gate.open`. A test then interrupts its client
while a request is certainly held (:meth:`Gate.wait_held`), instead of racing a signal
against a run that may finish first. Safe to drive from another thread than the server's.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["Gate"]


class Gate:
    """Open until :meth:`hold_after`; counts the answers it let through (``passed``)."""

    def __init__(self, hold_after: int | None = None) -> None:
        self._lock = threading.Lock()
        self._held_now = threading.Condition(self._lock)
        self._allowed: int | None = None  # answers allowed in all (None: open)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.passed = 0
        if hold_after is not None:
            self.hold_after(hold_after)

    @property
    def held(self) -> int:
        """Requests held at the gate now."""
        with self._lock:
            return len(self._waiters)

    def hold_after(self, answers: int) -> None:
        """Let ``answers`` more answers through, then hold the rest."""
        if answers < 0:
            raise ValueError("answers must be >= 0")
        with self._lock:
            self._allowed = self.passed + answers

    def open(self) -> None:
        """Let every request through again, held ones first."""
        with self._lock:
            self._allowed = None
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def wait_held(self, timeout: float) -> bool:
        """Block until a request is held (False when ``timeout`` seconds pass first)."""
        with self._held_now:
            return self._held_now.wait_for(lambda: bool(self._waiters), timeout)

    async def until_held(self, seconds: float = 30.0) -> bool:
        """:meth:`wait_held` for a coroutine (it waits in a worker thread)."""
        return await asyncio.to_thread(self.wait_held, seconds)

    async def passage(self) -> None:
        """Wait (in the server) until this request may be answered."""
        with self._lock:
            if self._allowed is None or self.passed < self._allowed:
                self.passed += 1
                return
            event = asyncio.Event()
            waiter = (asyncio.get_running_loop(), event)
            self._waiters.append(waiter)
            self._held_now.notify_all()
        try:
            await event.wait()
        finally:
            with self._lock:
                if waiter in self._waiters:  # cancelled: the client went away
                    self._waiters.remove(waiter)
                else:
                    self.passed += 1
