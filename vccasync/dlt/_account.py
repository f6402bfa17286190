"""One account's client for one dlt run, shared by every resource of that account.

dlt runs the source's async resources in one event loop of its extract step. The first
resource to need the API opens the account's :class:`~vccasync.VccClient` there (one session:
one token, one request budget, one 429 pause for all); it stays open until dlt ends the step,
when dlt closes the async generators still alive (``shutdown_asyncgens``): a small keeper
generator closes the client then. A later run (another event loop) opens a new client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from .._client import VccClient

__all__ = ["AccountRun"]


class AccountRun:
    """The client of account ``name`` (``settings``: ``VccClient`` keywords) for the current
    run, opened on first use."""

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self._settings = dict(settings)
        self._client: VccClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keeper: AsyncGenerator[None, None] | None = None
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"AccountRun({self.name!r})"

    async def client(self) -> VccClient:
        """The account's open client in the running loop (opened at the first call)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._client, self._keeper, self._loop = None, None, loop
            self._lock = asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self._client is None:
                client = VccClient(**self._settings)
                await client.__aenter__()
                keeper = _keep_open(client)
                await anext(keeper)  # suspended until dlt closes it with the loop's generators
                self._client, self._keeper = client, keeper
            return self._client


async def _keep_open(client: VccClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.__aexit__(None, None, None)
