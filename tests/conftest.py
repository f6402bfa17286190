"""Shared fixtures and helpers: an aioresponses mock that works with the newest aiohttp, fast
clients of the fake API, the API shape of its data."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import re
from collections.abc import Iterator
from typing import Any
from unittest import mock

import aiohttp
import asyncpg
import pytest
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core

from vccasync import VccClient
from vccasync._jsonio import stdlib_only
from vccasync.fake import FakeVccServer

from .pg import PgServer, find_bindir

API = "https://emea.api.newvoicemedia.com/interaction-content"
TOKEN_URL = "https://emea.cc.vonage.com/Auth/connect/token"

# Fast retries: the rules are the same, the waits are not (as stamina's test switch).
FAST: dict[str, Any] = {
    "backoff_initial": 0.001,
    "backoff_max": 0.01,
    "max_attempts": 4,
    "requests_per_minute": None,
}


def client_for(fake: FakeVccServer, **options: Any) -> VccClient:
    """A client of ``fake`` with fast retries (``options`` override)."""
    return VccClient(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        api_url=fake.api_url,
        auth_url=fake.auth_url,
        **{**FAST, **options},
    )


@pytest.fixture(params=["orjson", "stdlib"])
def decoder(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with orjson (when installed) and with the standard library's json."""
    if request.param == "orjson":
        pytest.importorskip("orjson")
        yield "orjson"
    else:
        with stdlib_only():
            yield "stdlib"


def api_shape(item: dict[str, Any]) -> dict[str, Any]:
    """The fake's JSON as vccasync writes it back: addresses as strings, nothing else changed."""
    out = dict(item)
    for key in ("connectFrom", "connectTo"):
        if isinstance(out.get(key), int):
            out[key] = str(out[key])
    return out


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp 3.14
    requires (pnuckowski/aioresponses#289). Supply a stand-in; remove this once a fixed
    aioresponses is released. Bodies over 64 KiB still fail there (#292): such cases use the
    fake API on loopback instead."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", mock.Mock(output_size=0))
        super().__init__(method, url, **kwargs)


_databases = itertools.count()

_NEEDS_COMPAT = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    """aioresponses, patched for aiohttp versions that need it (a no-op elsewhere)."""
    with (
        mock.patch.object(
            aioresponses_core,
            "ClientResponse",
            _CompatResponse if _NEEDS_COMPAT else aiohttp.ClientResponse,
        ),
        aioresponses() as m,
    ):
        yield m


def token_answer(
    m: aioresponses, token: str = "tok-1", expires_in: int = 3600, repeat: bool = False
) -> None:
    """Queue one successful token response."""
    m.post(
        TOKEN_URL,
        payload={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"},
        repeat=repeat,
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the whole run (Debian's binaries; see tests/pg.py)."""
    bindir = find_bindir()
    if bindir is None:
        reason = "no PostgreSQL server binary (initdb) here: apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
        pytest.skip(reason)
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_dsn(pg_server: PgServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the test server, as a ``postgresql://`` URL."""
    name = "t_" + re.sub(r"\W", "_", request.node.name.lower())[:40] + f"_{next(_databases)}"

    async def create() -> None:
        conn = await asyncpg.connect(pg_server.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return pg_server.dsn(name)
