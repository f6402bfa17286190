"""``QueueSignal``: how a store tells its own downloader that pieces were queued (in-process)."""

from __future__ import annotations

import asyncio
from contextlib import suppress

__all__ = ["QueueSignal"]


class QueueSignal:
    """An event set when this process queued pieces; :meth:`wait_queued` waits for it."""

    def __init__(self) -> None:
        self._queued = asyncio.Event()

    def queued(self) -> None:
        """Pieces were queued (committed)."""
        self._queued.set()

    async def wait_queued(self, seconds: float) -> None:
        """Return once pieces were queued since the last call, or after ``seconds``."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._queued.wait(), seconds)
        self._queued.clear()
