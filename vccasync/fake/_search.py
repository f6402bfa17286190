"""The fake's search and get-one handlers: ``GET /interactions`` and ``/interactions/{guid}``."""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from vccasync._query import FILTERS
from vccasync.fake._config import FakeConfig
from vccasync.fake._dataset import Item, Query
from vccasync.fake._paging import (
    bind_token,
    decode_token,
    encode_token,
    parse_instant,
    unbind_token,
)
from vccasync.fake._respond import message
from vccasync.fake._state import State
from vccasync.fake._timeline import reveal, reveal_one

__all__ = ["MAX_LIMIT", "get_one", "latency", "search"]

MAX_RANGE_SECONDS: Final = 7 * 86_400
MAX_LIMIT: Final = 1000
_BY_PARAM: Final = {f.api.lower(): f for f in FILTERS}  # the API takes any case
_SEARCH_PARAMS: Final = ("start", "end", *_BY_PARAM, "limit", "continuationtoken")


def _search_params(request: web.Request) -> dict[str, str]:
    """Query parameters by lower-cased name; the first occurrence wins."""
    params: dict[str, str] = {}
    for name, value in request.query.items():
        params.setdefault(name.lower(), value)
    return {k: v for k, v in params.items() if k in _SEARCH_PARAMS}


async def search(request: web.Request, state: State) -> tuple[int, object]:
    """``GET /interactions``: one page of matching interactions with content.

    Pages follow ``FakeConfig.order``; a token names the last key of its page in that order.
    """
    params = _search_params(request)
    for name in ("start", "end"):
        if not params.get(name):
            return message(400, f"The {name} field is required.")
    start, end = parse_instant(params["start"]), parse_instant(params["end"])
    if start is None or end is None:
        return message(400, "start and end must be ISO 8601 date-times with a time zone.")
    if end < start:
        return message(400, "end must not be before start.")
    if (end - start).total_seconds() > MAX_RANGE_SECONDS:
        return message(400, "The maximum date range between start and end is 7 days.")
    filters: dict[str, str] = {}
    for name, declared in _BY_PARAM.items():
        if name not in params:
            continue
        value = filters[declared.name] = params[name]
        if declared.kind == "prefix" and not 1 <= len(value) <= 50:
            return message(400, f"{name} must be between 1 and 50 characters long.")
        if declared.choices and value.casefold() not in declared.choices:
            return message(400, f"{name} must be {' or '.join(declared.choices)}.")
    limit_text = params.get("limit", str(MAX_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        return message(400, f"limit must be an integer from 1 to {MAX_LIMIT}.")
    after = None
    if "continuationtoken" in params:
        token: str | None = params["continuationtoken"]
        if state.config.bind_tokens:
            token = unbind_token(params["continuationtoken"], params)
        after = None if token is None else decode_token(token)
        if after is None:
            return message(400, "The continuationToken is invalid.")
    query = Query(start, end, state.config.end_inclusive, filters)
    data, order = state.dataset, state.config.order
    found, more = data.search(query, after=after, limit=int(limit_text), order=order)
    await latency(state.config, len(found))
    token = encode_token(data.key(found[-1])) if more else None  # stateless: the last key
    if token is not None and state.config.bind_tokens:
        token = bind_token(token, params)
    if order == "hour":
        found.sort(key=data.key)
    items = reveal(state.config.timeline, [data.item(p) for p in found])
    return 200, {"items": items, "meta": {"nextContinuationToken": token}}


async def get_one(request: web.Request, state: State) -> tuple[int, object]:
    """``GET /interactions/{guid}``: one interaction with content, else 404."""
    await latency(state.config, 1)
    if (item := visible_item(state, request.match_info["guid"])) is None:
        return message(404, "Interaction not found.")
    return 200, item


def visible_item(state: State, guid: str) -> Item | None:
    """The interaction ``guid`` as the API shows it now (None: unknown or without content)."""
    data = state.dataset
    pos = data.position(guid)
    item = None if pos is None or not data.has_content(pos) else data.item(pos)
    return reveal_one(state.config.timeline, item)


async def latency(config: FakeConfig, items: int) -> None:
    delay = config.page_latency + config.per_item_latency * items
    if delay > 0:
        await asyncio.sleep(delay)
