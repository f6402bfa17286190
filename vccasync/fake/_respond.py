"""Answers of the fake server: JSON bodies, and the faults that replace or cut them."""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from vccasync._jsonio import dumps
from vccasync.fake._faults import Fault
from vccasync.fake._state import State

__all__ = [
    "JSON_MEDIA",
    "V3_MEDIA",
    "Closed",
    "deliver",
    "dumps",
    "json_response",
    "message",
    "stall",
    "wire_status",
]


V3_MEDIA: Final = "application/vnd.newvoicemedia.v3+json"
JSON_MEDIA: Final = "application/json; charset=utf-8"


class Closed(web.Response):
    """Stands in for an answer cut off by closing the connection; never sent."""

    def __init__(self, wire_status: int) -> None:
        super().__init__()
        self.wire_status = wire_status  # what the client saw: 0 for nothing


def wire_status(response: web.StreamResponse) -> int:
    return response.wire_status if isinstance(response, Closed) else response.status


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def message(status: int, message: str) -> tuple[int, object]:
    return status, {"message": message}


async def stall(state: State, fault: Fault | None) -> Fault | None:
    """Serve out a "stall" fault (sleep); other faults are left to :func:`deliver`."""
    if fault is None or fault.kind != "stall":
        return fault
    state.stats.faults["stall"] += 1
    await asyncio.sleep(state.config.faults.stall_seconds)
    return None


async def deliver(
    request: web.Request, state: State, fault: Fault | None, status: int, body: object
) -> web.StreamResponse:
    """Answer ``status``/``body`` as JSON, or as ``fault`` dictates ("stall" already served)."""
    if fault is None:
        return json_response(status, body)
    state.stats.faults[fault.kind] += 1
    transport = request.transport
    if fault.kind == "drop":
        if transport is not None:
            transport.abort()
        return Closed(0)
    if fault.kind != "truncate":
        return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
    payload = dumps(body)
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON_MEDIA})
    response.content_length = len(payload)
    await response.prepare(request)
    await response.write(payload[: max(1, len(payload) // 2)])
    if transport is not None:
        transport.close()  # flushes what was written, then closes
    return Closed(200)
