"""Shared fixtures: an aioresponses mock that works with the newest aiohttp, fast clients."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core

API = "https://emea.api.newvoicemedia.com/interaction-content"
TOKEN_URL = "https://emea.cc.vonage.com/Auth/connect/token"

# Fast retries: the rules are the same, the waits are not (as stamina's test switch).
FAST: dict[str, Any] = {
    "backoff_initial": 0.001,
    "backoff_max": 0.01,
    "max_attempts": 4,
    "requests_per_minute": None,
}


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp 3.14
    requires (pnuckowski/aioresponses#289). Supply a stand-in; remove this once a fixed
    aioresponses is released. Bodies over 64 KiB still fail there (#292): such cases use the
    fake API on loopback instead."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", mock.Mock(output_size=0))
        super().__init__(method, url, **kwargs)


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
