"""The fake VCC API as an aiohttp application: routing, and the checks every API request meets.

Order of checks for an API request: server-side rate limit (429), bearer token (401),
``Accept`` (400), then the gate for search and content (held until allowed; see
:mod:`vccasync.fake._gate`), then the injected fault, if any, then the request itself
(400/404/200). A fault therefore never hides an auth or Accept error, and faults only hit
requests that would have been served: "drop", "500", "502-html", "429", "429-bare" and
"bad-json" answer instead of the handler; "stall" delays the normal answer; "truncate" cuts a
normal 200 answer short. Handlers: :mod:`vccasync.fake._search` (search, get one),
:mod:`vccasync.fake._serve_content` (content, storage), :mod:`vccasync.fake._control` (the
gate's loopback control).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Final, cast

from aiohttp import web

from vccasync.fake._auth import (
    DELETE_SCOPE,
    READ_SCOPE,
    basic_credentials,
    bearer_token,
    granted,
    token_error,
)
from vccasync.fake._config import FakeConfig
from vccasync.fake._control import add_control_routes
from vccasync.fake._dataset import Dataset
from vccasync.fake._deletes import add_routes
from vccasync.fake._faults import Fault
from vccasync.fake._respond import V3_MEDIA, deliver, json_response, stall, wire_status
from vccasync.fake._search import get_one, search
from vccasync.fake._serve_content import STORAGE_ROOT, content, storage
from vccasync.fake._state import GATE_KEY, STATE_KEY, STATS_KEY, State
from vccasync.fake._stats import FakeStats, RequestRecord

__all__ = [
    "API_ROOT",
    "GATE_KEY",
    "STATS_KEY",
    "FakeConfig",
    "FakeStats",
    "RequestRecord",
    "build_app",
]

API_ROOT: Final = "/interaction-content"
_GATED: Final = {"search_requests": "search", "content_requests": "content", "get_requests": "get"}
_Handler = Callable[[web.Request, State], Awaitable[tuple[int, object]]]
_Streamer = Callable[[web.Request, State, "Fault | None"], Awaitable[web.StreamResponse]]


def build_app(dataset: Dataset, config: FakeConfig) -> web.Application:
    """The fake API; its :class:`FakeStats` is ``app[STATS_KEY]``, its gate ``app[GATE_KEY]``."""
    app = web.Application()
    state = State.build(dataset, config)
    app[STATE_KEY], app[STATS_KEY], app[GATE_KEY] = state, state.stats, state.gate
    for path in ("/auth/connect/token", "/Auth/connect/token"):
        app.router.add_post(path, _token)
    app.router.add_get(f"{API_ROOT}/interactions", _api(search, "search_requests"))
    app.router.add_get(f"{API_ROOT}/interactions/{{guid}}", _api(get_one, "get_requests"))
    app.router.add_get(
        f"{API_ROOT}/interactions/{{guid}}/content/{{key}}", _api(content, "content_requests")
    )
    app.router.add_get(f"{STORAGE_ROOT}/{{guid}}/{{key}}", storage)
    add_routes(app, API_ROOT, _api, dataset, config.deletes, state.stats.deletes)
    add_control_routes(app)
    return app


async def _token(request: web.Request) -> web.StreamResponse:
    """``POST /auth/connect/token`` (client credentials in the form or as HTTP Basic)."""
    state = request.app[STATE_KEY]
    state.stats.requests += 1
    state.stats.token_requests += 1
    fault = state.token_faults.choose() if state.config.token_faults else None
    response = await _answer_token(request, state, await stall(state, fault))
    state.stats.statuses[wire_status(response)] += 1
    return response


async def _answer_token(
    request: web.Request, state: State, fault: Fault | None
) -> web.StreamResponse:
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    error = token_error(
        form,
        basic_credentials(request.headers.get("Authorization")),
        client_id=state.config.client_id,
        client_secret=state.config.client_secret,
    )
    if error is not None:
        return json_response(400, {"error": error})
    ttl = state.config.token_ttl
    body = {
        "access_token": state.tokens.issue(granted(form, state.config.scopes)),
        "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
        "token_type": "Bearer",
    }
    return await deliver(request, state, fault, 200, body)


def _api(
    handler: _Handler | _Streamer, counter: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap an API handler with stats, rate limit, auth, Accept and faults."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        stats = state.stats
        stats.requests += 1
        setattr(stats, counter, getattr(stats, counter) + 1)
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        status = 0
        try:
            response = await _serve_api(
                request,
                state,
                handler,
                _GATED.get(counter) in state.config.gated,
                counter.removesuffix("_requests"),
            )
            status = wire_status(response)
            return response
        finally:
            stats.in_flight -= 1
            stats.statuses[status] += 1
            stats.records.append(
                RequestRecord(time.monotonic(), request.path, dict(request.query), status)
            )

    return wrapped


async def _serve_api(
    request: web.Request, state: State, handler: _Handler | _Streamer, gated: bool, kind: str
) -> web.StreamResponse:
    if state.limiter is not None and (wait := state.limiter.acquire()) is not None:
        state.stats.rate_limited += 1
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        return json_response(
            429,
            {"message": "Rate limit exceeded. Try again later."},
            headers if state.config.rate_limit_retry_after else None,
        )
    token = bearer_token(request.headers.get("Authorization"))
    if token is None or not state.tokens.valid(token):
        return json_response(401, {"message": "Authorization has been denied for this request."})
    needed = READ_SCOPE if request.method == "GET" else DELETE_SCOPE
    if needed not in state.tokens.scopes(token):
        return json_response(403, {"message": f"The token lacks the {needed} scope."})
    accepted = {
        m.split(";")[0].strip().lower() for m in request.headers.get("Accept", "").split(",")
    }
    if V3_MEDIA not in accepted:
        return json_response(400, {"message": f"The Accept header must be {V3_MEDIA}."})
    if gated:
        await state.gate.passage()
    fault = await stall(state, state.faults.choose(kind))
    if fault is not None and fault.kind != "truncate":
        return await deliver(request, state, fault, 200, None)
    if handler is content:
        return await content(request, state, fault)
    status, body = await cast(_Handler, handler)(request, state)
    return await deliver(request, state, fault if status == 200 else None, status, body)
