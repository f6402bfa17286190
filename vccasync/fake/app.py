"""The fake VCC API as an aiohttp application: token endpoint, search, get-one and content.

Order of checks for an API request: server-side rate limit (429), bearer token (401),
``Accept`` (400), then the injected fault, if any, then the request itself (400/404/200).
A fault therefore never hides an auth or Accept error, and faults only hit requests that would
have been served: "drop", "500", "502-html", "429", "429-bare" and "bad-json" answer instead of
the handler; "stall" delays the normal answer; "truncate" cuts a normal 200 answer short.

Content (``/interactions/{guid}/content/{key}``) is served in chunks with the item's
``contentType``, honouring ``Range``; with ``FakeConfig.content_redirect_host`` set, the API
answers 302 to an unauthenticated "storage" route on the same server reached under that host
name (e.g. ``localhost``: another origin), which records the headers it received.
``content_chunk_latency`` (seconds per 64 KiB) imitates a slow link.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final, NamedTuple, cast

import attrs
from aiohttp import web

from vccasync.fake.auth import TokenStore, basic_credentials, bearer_token, token_error
from vccasync.fake.content import content_chunks, parse_range
from vccasync.fake.dataset import Dataset, Item, Query
from vccasync.fake.faults import Fault, FaultConfig, FaultInjector
from vccasync.fake.limits import SlidingWindow
from vccasync.fake.paging import decode_token, encode_token, parse_instant
from vccasync.fake.timeline import Timeline, reveal, reveal_one

try:
    import orjson

    def dumps(obj: object) -> bytes:
        """Serialise to JSON bytes (orjson)."""
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is optional

    def dumps(obj: object) -> bytes:
        """Serialise to JSON bytes (stdlib)."""
        return json.dumps(obj, separators=(",", ":")).encode()


V3_MEDIA: Final = "application/vnd.newvoicemedia.v3+json"
JSON_MEDIA: Final = "application/json; charset=utf-8"
API_ROOT: Final = "/interaction-content"
STORAGE_ROOT: Final = "/storage"
MAX_RANGE_SECONDS: Final = 7 * 86_400
MAX_LIMIT: Final = 1000
_SEARCH_PARAMS: Final = (
    "start",
    "end",
    "handlingagentid",
    "connectfrom",
    "connectto",
    "direction",
    "limit",
    "continuationtoken",
)


@attrs.frozen
class FakeConfig:
    """Behaviour of the fake server. ``rate_limit_window`` (seconds) is for fast tests."""

    client_id: str = "demo-client"
    client_secret: str = "demo-secret"
    token_ttl: float = 3600.0
    page_latency: float = 0.0
    per_item_latency: float = 0.0
    rate_limit_per_minute: int | None = None
    rate_limit_retry_after: bool = True
    end_inclusive: bool = True
    faults: FaultConfig = attrs.field(factory=FaultConfig)
    token_faults: bool = False
    rate_limit_window: float = 60.0
    content_redirect_host: str | None = None
    content_chunk_latency: float = 0.0
    timeline: Timeline | None = None  # time-varying data (vccasync.fake.timeline)


class RequestRecord(NamedTuple):
    """One API request as the server saw it (status 0: dropped without an answer)."""

    time: float
    path: str
    query: dict[str, str]
    status: int


@attrs.define
class FakeStats:
    """Counters of what the server did; mutable, reset with :meth:`reset`."""

    requests: int = 0
    token_requests: int = 0
    search_requests: int = 0
    get_requests: int = 0
    content_requests: int = 0
    storage_requests: int = 0
    content_bytes_sent: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    rate_limited: int = 0
    faults: Counter[str] = attrs.field(factory=Counter)
    statuses: Counter[int] = attrs.field(factory=Counter)
    records: list[RequestRecord] = attrs.field(factory=list)
    storage_headers: list[dict[str, str]] = attrs.field(factory=list)

    def reset(self) -> None:
        """Zero every counter (``in_flight`` keeps counting requests still running)."""
        fresh = FakeStats(in_flight=self.in_flight, max_in_flight=self.in_flight)
        for field in attrs.fields(FakeStats):
            setattr(self, field.name, getattr(fresh, field.name))


@attrs.define
class _State:
    dataset: Dataset
    config: FakeConfig
    stats: FakeStats
    tokens: TokenStore
    faults: FaultInjector
    token_faults: FaultInjector
    limiter: SlidingWindow | None


STATS_KEY: Final = web.AppKey("vcc_fake_stats", FakeStats)
_STATE_KEY: Final = web.AppKey("vcc_fake_state", _State)
_Handler = Callable[[web.Request, _State], Awaitable[tuple[int, object]]]
_Streamer = Callable[[web.Request, _State, "Fault | None"], Awaitable[web.StreamResponse]]


class _Closed(web.Response):
    """Stands in for an answer cut off by closing the connection; never sent."""

    def __init__(self, wire_status: int) -> None:
        super().__init__()
        self.wire_status = wire_status  # what the client saw: 0 for nothing


def _wire_status(response: web.StreamResponse) -> int:
    return response.wire_status if isinstance(response, _Closed) else response.status


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _message(status: int, message: str) -> tuple[int, object]:
    return status, {"message": message}


def build_app(dataset: Dataset, config: FakeConfig) -> web.Application:
    """The fake API; its :class:`FakeStats` is ``app[STATS_KEY]``."""
    app = web.Application()
    stats = FakeStats()
    limit = config.rate_limit_per_minute
    app[STATS_KEY] = stats
    app[_STATE_KEY] = _State(
        dataset=dataset,
        config=config,
        stats=stats,
        tokens=TokenStore(config.token_ttl),
        faults=FaultInjector(config.faults),
        token_faults=FaultInjector(attrs.evolve(config.faults, seed=config.faults.seed + 1)),
        limiter=None if limit is None else SlidingWindow(limit, config.rate_limit_window),
    )
    for path in ("/auth/connect/token", "/Auth/connect/token"):
        app.router.add_post(path, _token)
    app.router.add_get(f"{API_ROOT}/interactions", _api(_search, "search_requests"))
    app.router.add_get(f"{API_ROOT}/interactions/{{guid}}", _api(_get_one, "get_requests"))
    app.router.add_get(
        f"{API_ROOT}/interactions/{{guid}}/content/{{key}}", _api(_content, "content_requests")
    )
    app.router.add_get(f"{STORAGE_ROOT}/{{guid}}/{{key}}", _storage)
    return app


async def _token(request: web.Request) -> web.StreamResponse:
    """``POST /auth/connect/token`` (client credentials in the form or as HTTP Basic)."""
    state = request.app[_STATE_KEY]
    state.stats.requests += 1
    state.stats.token_requests += 1
    fault = state.token_faults.choose() if state.config.token_faults else None
    response = await _answer_token(request, state, await _stall(state, fault))
    state.stats.statuses[_wire_status(response)] += 1
    return response


async def _answer_token(
    request: web.Request, state: _State, fault: Fault | None
) -> web.StreamResponse:
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    error = token_error(
        form,
        basic_credentials(request.headers.get("Authorization")),
        client_id=state.config.client_id,
        client_secret=state.config.client_secret,
    )
    if error is not None:
        return _json(400, {"error": error})
    ttl = state.config.token_ttl
    body = {
        "access_token": state.tokens.issue(),
        "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
        "token_type": "Bearer",
    }
    return await _deliver(request, state, fault, 200, body)


def _api(
    handler: _Handler | _Streamer, counter: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap an API handler with stats, rate limit, auth, Accept and faults."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        state = request.app[_STATE_KEY]
        stats = state.stats
        stats.requests += 1
        setattr(stats, counter, getattr(stats, counter) + 1)
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        status = 0
        try:
            response = await _serve_api(request, state, handler)
            status = _wire_status(response)
            return response
        finally:
            stats.in_flight -= 1
            stats.statuses[status] += 1
            stats.records.append(
                RequestRecord(time.monotonic(), request.path, dict(request.query), status)
            )

    return wrapped


async def _serve_api(
    request: web.Request, state: _State, handler: _Handler | _Streamer
) -> web.StreamResponse:
    if state.limiter is not None and (wait := state.limiter.acquire()) is not None:
        state.stats.rate_limited += 1
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        return _json(
            429,
            {"message": "Rate limit exceeded. Try again later."},
            headers if state.config.rate_limit_retry_after else None,
        )
    token = bearer_token(request.headers.get("Authorization"))
    if token is None or not state.tokens.valid(token):
        return _json(401, {"message": "Authorization has been denied for this request."})
    accepted = {
        m.split(";")[0].strip().lower() for m in request.headers.get("Accept", "").split(",")
    }
    if V3_MEDIA not in accepted:
        return _json(400, {"message": f"The Accept header must be {V3_MEDIA}."})
    fault = await _stall(state, state.faults.choose())
    if fault is not None and fault.kind != "truncate":
        return await _deliver(request, state, fault, 200, None)
    if handler is _content:
        return await _content(request, state, fault)
    status, body = await cast(_Handler, handler)(request, state)
    return await _deliver(request, state, fault if status == 200 else None, status, body)


async def _stall(state: _State, fault: Fault | None) -> Fault | None:
    """Serve out a "stall" fault (sleep); other faults are left to :func:`_deliver`."""
    if fault is None or fault.kind != "stall":
        return fault
    state.stats.faults["stall"] += 1
    await asyncio.sleep(state.config.faults.stall_seconds)
    return None


async def _deliver(
    request: web.Request, state: _State, fault: Fault | None, status: int, body: object
) -> web.StreamResponse:
    """Answer ``status``/``body`` as JSON, or as ``fault`` dictates ("stall" already served)."""
    if fault is None:
        return _json(status, body)
    state.stats.faults[fault.kind] += 1
    transport = request.transport
    if fault.kind == "drop":
        if transport is not None:
            transport.abort()
        return _Closed(0)
    if fault.kind != "truncate":
        return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
    payload = dumps(body)
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON_MEDIA})
    response.content_length = len(payload)
    await response.prepare(request)
    await response.write(payload[: max(1, len(payload) // 2)])
    if transport is not None:
        transport.close()  # flushes what was written, then closes
    return _Closed(200)


def _search_params(request: web.Request) -> dict[str, str]:
    """Query parameters by lower-cased name; the first occurrence wins."""
    params: dict[str, str] = {}
    for name, value in request.query.items():
        params.setdefault(name.lower(), value)
    return {k: v for k, v in params.items() if k in _SEARCH_PARAMS}


async def _search(request: web.Request, state: _State) -> tuple[int, object]:
    """``GET /interactions``: one page of matching interactions with content."""
    params = _search_params(request)
    for name in ("start", "end"):
        if not params.get(name):
            return _message(400, f"The {name} field is required.")
    start, end = parse_instant(params["start"]), parse_instant(params["end"])
    if start is None or end is None:
        return _message(400, "start and end must be ISO 8601 date-times with a time zone.")
    if end < start:
        return _message(400, "end must not be before start.")
    if (end - start).total_seconds() > MAX_RANGE_SECONDS:
        return _message(400, "The maximum date range between start and end is 7 days.")
    for name in ("connectfrom", "connectto"):
        if name in params and not 1 <= len(params[name]) <= 50:
            return _message(400, f"{name} must be between 1 and 50 characters long.")
    direction = params.get("direction")
    if direction is not None and direction.lower() not in ("inbound", "outbound"):
        return _message(400, "direction must be inbound or outbound.")
    limit_text = params.get("limit", str(MAX_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        return _message(400, f"limit must be an integer from 1 to {MAX_LIMIT}.")
    after = None
    if "continuationtoken" in params:
        after = decode_token(params["continuationtoken"])
        if after is None:
            return _message(400, "The continuationToken is invalid.")
    query = Query(
        start,
        end,
        state.config.end_inclusive,
        direction,
        params.get("connectfrom"),
        params.get("connectto"),
        params.get("handlingagentid"),
    )
    data = state.dataset
    found, more = data.search(query, after=after, limit=int(limit_text))
    await _latency(state.config, len(found))
    token = encode_token(data.key(found[-1])) if more else None
    items = reveal(state.config.timeline, [data.item(p) for p in found])
    return 200, {"items": items, "meta": {"nextContinuationToken": token}}


async def _get_one(request: web.Request, state: _State) -> tuple[int, object]:
    """``GET /interactions/{guid}``: one interaction with content, else 404."""
    data = state.dataset
    pos = data.position(request.match_info["guid"])
    await _latency(state.config, 1)
    item = None if pos is None or not data.has_content(pos) else data.item(pos)
    if (item := reveal_one(state.config.timeline, item)) is None:
        return _message(404, "Interaction not found.")
    return 200, item


async def _latency(config: FakeConfig, items: int) -> None:
    delay = config.page_latency + config.per_item_latency * items
    if delay > 0:
        await asyncio.sleep(delay)


def _find_content(state: _State, guid: str, key: str) -> Item | None:
    data = state.dataset
    pos = data.position(guid)
    item = None if pos is None or not data.has_content(pos) else data.item(pos)
    if (item := reveal_one(state.config.timeline, item)) is None:
        return None
    return next((c for c in item["content"] if c["contentKey"] == key), None)


async def _content(request: web.Request, state: _State, fault: Fault | None) -> web.StreamResponse:
    """``GET /interactions/{guid}/content/{key}``: the bytes, or a 302 to storage, else 404."""
    guid, key = request.match_info["guid"], request.match_info["key"]
    piece = _find_content(state, guid, key)
    if piece is None:
        return _json(404, {"message": "Content not found."})
    host = state.config.content_redirect_host
    if host is not None:
        port = request.url.port
        location = request.url.with_host(host).with_port(port).with_query({"sig": "fake"})
        location = location.with_path(f"{STORAGE_ROOT}/{guid}/{key}")
        return web.Response(status=302, headers={"Location": str(location)})
    return await _stream_content(request, state, fault, guid, piece)


async def _storage(request: web.Request) -> web.StreamResponse:
    """The redirect target: serves content without auth and records the request headers."""
    state = request.app[_STATE_KEY]
    state.stats.storage_requests += 1
    state.stats.storage_headers.append(dict(request.headers))
    fault = await _stall(state, state.faults.choose())
    if fault is not None and fault.kind != "truncate":
        return await _deliver(request, state, fault, 200, None)
    guid, key = request.match_info["guid"], request.match_info["key"]
    piece = _find_content(state, guid, key)
    if piece is None:
        return _json(404, {"message": "No such object."})
    return await _stream_content(request, state, fault, guid, piece)


async def _stream_content(
    request: web.Request, state: _State, fault: Fault | None, guid: str, piece: Item
) -> web.StreamResponse:
    """Serve ``piece`` (or the asked range of it); a "truncate" fault closes mid-body."""
    length: int = piece["contentLength"]
    try:
        span = parse_range(request.headers.get("Range"), length)
    except ValueError:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{length}"})
    start, stop = span or (0, length)
    response = web.StreamResponse(
        status=200 if span is None else 206,
        headers={"Content-Type": piece["contentType"], "Accept-Ranges": "bytes"},
    )
    if span is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{length}"
    response.content_length = stop - start
    cut = stop if fault is None else start + max(1, (stop - start) // 2)
    if fault is not None:
        state.stats.faults[fault.kind] += 1
    await response.prepare(request)
    pause = state.config.content_chunk_latency
    for chunk in content_chunks(guid, piece["contentKey"], start, cut):
        if pause > 0:
            await asyncio.sleep(pause)
        await response.write(chunk)
        state.stats.content_bytes_sent += len(chunk)
    if fault is not None:
        if request.transport is not None:
            request.transport.close()
        return _Closed(200)
    await response.write_eof()
    return response
