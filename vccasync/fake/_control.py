"""The gate's control on loopback, for a fake run in another process than its test.

``POST /_fake/gate?hold_after=N`` lets N more search/content answers through and holds the
rest; ``POST /_fake/gate?open=1`` lets everything through; ``GET /_fake/gate`` reports
``{"passed": ..., "held": ...}``. The server only ever listens on 127.0.0.1.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from vccasync.fake._respond import json_response
from vccasync.fake._state import GATE_KEY

__all__ = ["CONTROL_PATH", "add_control_routes"]

CONTROL_PATH: Final = "/_fake/gate"


def add_control_routes(app: web.Application) -> None:
    """Route ``CONTROL_PATH`` to the gate of ``app``."""
    app.router.add_get(CONTROL_PATH, _report)
    app.router.add_post(CONTROL_PATH, _control)


async def _report(request: web.Request) -> web.StreamResponse:
    gate = request.app[GATE_KEY]
    return json_response(200, {"passed": gate.passed, "held": gate.held})


async def _control(request: web.Request) -> web.StreamResponse:
    gate = request.app[GATE_KEY]
    text = request.query.get("hold_after")
    if text is not None:
        if not text.isdigit():
            return json_response(400, {"message": "hold_after must be a whole number."})
        gate.hold_after(int(text))
    elif "open" in request.query:
        gate.open()
    else:
        return json_response(400, {"message": "Give hold_after=N or open=1."})
    return await _report(request)
