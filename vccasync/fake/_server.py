"""Run the fake API on 127.0.0.1: in the caller's event loop or in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from aiohttp import web

from vccasync.fake._app import GATE_KEY, STATS_KEY, build_app
from vccasync.fake._config import FakeConfig
from vccasync.fake._dataset import Dataset
from vccasync.fake._faults import FaultConfig, FaultInjector
from vccasync.fake._gate import Gate
from vccasync.fake._search import visible_item
from vccasync.fake._serve_content import piece_version
from vccasync.fake._state import STATE_KEY
from vccasync.fake._stats import FakeStats

HOST = "127.0.0.1"


class FakeVccServer:
    """The fake API on loopback; ``port=0`` picks a free port. Use ``async with``."""

    def __init__(self, dataset: Dataset, config: FakeConfig | None = None, *, port: int = 0):
        self.dataset = dataset
        self.config = config or FakeConfig()
        self.app = build_app(dataset, self.config)
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the port is known once started)."""
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        """API root, like ``https://emea.api.newvoicemedia.com/interaction-content``."""
        return f"{self.url}/interaction-content"

    @property
    def auth_url(self) -> str:
        """Auth root; the token endpoint is ``auth_url + "/connect/token"``."""
        return f"{self.url}/auth"

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    @property
    def stats(self) -> FakeStats:
        return self.app[STATS_KEY]

    @property
    def gate(self) -> Gate:
        """Holds search and content answers on demand (see :mod:`vccasync.fake._gate`)."""
        return self.app[GATE_KEY]

    def inject_faults(self, faults: FaultConfig) -> None:
        """From now on, fail API requests as ``faults`` says (``FaultConfig()``: none); token
        requests keep theirs. Safe to call from another thread than the server's."""
        self.app[STATE_KEY].faults = FaultInjector(faults)

    def reprocess(self, guid: str, key: str, *, length: int | None = None) -> dict[str, Any]:
        """Replace the piece ``key`` of ``guid`` upstream by a new version
        (``Dataset.revise``: a later lastModified, ``length`` bytes when given) with other
        bytes; the piece as the API shows it now. ``KeyError`` when there is no such piece."""
        self.dataset.revise(guid, key, length=length)
        item = visible_item(self.app[STATE_KEY], guid)
        piece = next((c for c in item["content"] if c["contentKey"] == key), None) if item else None
        if piece is None:
            raise KeyError((guid, key))
        return dict(piece)

    def content_version(self, guid: str, key: str) -> str:
        """The version tag the bytes of a piece are drawn with now (see ``content_chunks``)."""
        return piece_version(self.dataset, guid, key)

    def reset_stats(self) -> None:
        """Zero the counters (between phases of a test)."""
        self.stats.reset()

    async def start(self) -> None:
        """Listen on 127.0.0.1 only."""
        runner = web.AppRunner(
            self.app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, HOST, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeVccServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


@contextmanager
def running_in_thread(
    dataset: Dataset, config: FakeConfig | None = None, *, port: int = 0
) -> Iterator[FakeVccServer]:
    """The server running in a daemon thread with its own event loop (for synchronous code).

    Reading ``stats`` from the caller's thread is safe enough for tests (the GIL protects the
    counters); stop traffic before asserting on them.
    """
    server = FakeVccServer(dataset, config, port=port)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller's thread
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.stop())
            loop.close()

    thread = threading.Thread(target=run, name="fake-vcc-server", daemon=True)
    thread.start()
    started.wait()
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
