"""The fake's content routes: the API's ``/interactions/{guid}/content/{key}`` and storage.

Content is served in chunks with the item's ``contentType``, with an ``ETag`` and a
``Last-Modified`` of its version, honouring ``Range`` and ``If-Range`` (a validator of another
version: the whole body, 200); ``FakeConfig.content_etags`` / ``content_if_range`` set to
False imitate a server that sends no ``ETag`` / ignores ``If-Range``; with
``FakeConfig.content_redirect_host`` set, the API answers 302 to an unauthenticated "storage"
route on the same server reached under that host name (e.g. ``localhost``: another origin),
which records the headers it received. ``content_chunk_latency`` (seconds per 64 KiB)
imitates a slow link.
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from vccasync.fake._content import (
    content_chunks,
    if_range_matches,
    parse_range,
    revision_tag,
    validators,
)
from vccasync.fake._dataset import Dataset, Item
from vccasync.fake._faults import Fault
from vccasync.fake._paging import parse_instant
from vccasync.fake._respond import Closed, deliver, json_response, stall
from vccasync.fake._search import visible_item
from vccasync.fake._state import STATE_KEY, State

__all__ = ["STORAGE_ROOT", "content", "piece_version", "storage"]

STORAGE_ROOT: Final = "/storage"


def piece_version(dataset: Dataset, guid: str, key: str) -> str:
    """The version tag of a piece's bytes (``Dataset.revise`` gives each revision others)."""
    pos = dataset.position(guid)
    revision = None if pos is None else dataset.revisions.get((pos, key))
    return revision_tag(0 if revision is None else revision.count)


def _find_content(state: State, guid: str, key: str) -> Item | None:
    if (item := visible_item(state, guid)) is None:
        return None
    return next((c for c in item["content"] if c["contentKey"] == key), None)


async def content(request: web.Request, state: State, fault: Fault | None) -> web.StreamResponse:
    """``GET /interactions/{guid}/content/{key}``: the bytes, or a 302 to storage, else 404."""
    guid, key = request.match_info["guid"], request.match_info["key"]
    piece = _find_content(state, guid, key)
    if piece is None:
        return json_response(404, {"message": "Content not found."})
    host = state.config.content_redirect_host
    if host is not None:
        port = request.url.port
        location = request.url.with_host(host).with_port(port).with_query({"sig": "fake"})
        location = location.with_path(f"{STORAGE_ROOT}/{guid}/{key}")
        return web.Response(status=302, headers={"Location": str(location)})
    return await _stream_content(request, state, fault, guid, piece)


async def storage(request: web.Request) -> web.StreamResponse:
    """The redirect target: serves content without auth and records the request headers."""
    state = request.app[STATE_KEY]
    state.stats.storage_requests += 1
    state.stats.storage_headers.append(dict(request.headers))
    fault = await stall(state, state.faults.choose("content"))
    if fault is not None and fault.kind != "truncate":
        return await deliver(request, state, fault, 200, None)
    guid, key = request.match_info["guid"], request.match_info["key"]
    piece = _find_content(state, guid, key)
    if piece is None:
        return json_response(404, {"message": "No such object."})
    return await _stream_content(request, state, fault, guid, piece)


async def _stream_content(
    request: web.Request, state: State, fault: Fault | None, guid: str, piece: Item
) -> web.StreamResponse:
    """Serve ``piece`` (or the asked range of it); a "truncate" fault closes mid-body."""
    length: int = piece["contentLength"]
    key = piece["contentKey"]
    version = piece_version(state.dataset, guid, key)
    modified = parse_instant(piece["lastModified"])
    assert modified is not None, "the fake's lastModified is always an instant"
    etag, last_modified = validators(guid, key, modified, length, version)
    ranged = request.headers.get("Range")
    condition = request.headers.get("If-Range") if state.config.content_if_range else None
    if condition is not None and not if_range_matches(condition, etag, last_modified):
        ranged = None  # another version: the whole of this one
    try:
        span = parse_range(ranged, length)
    except ValueError:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{length}"})
    start, stop = span or (0, length)
    response = web.StreamResponse(
        status=200 if span is None else 206,
        headers={
            "Content-Type": piece["contentType"],
            "Accept-Ranges": "bytes",
            "Last-Modified": last_modified,
        },
    )
    if state.config.content_etags:
        response.headers["ETag"] = etag
    if span is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{length}"
    response.content_length = stop - start
    cut = stop if fault is None else start + max(1, (stop - start) // 2)
    if fault is not None:
        state.stats.faults[fault.kind] += 1
    await response.prepare(request)
    pause = state.config.content_chunk_latency
    for chunk in content_chunks(guid, key, start, cut, version):
        if pause > 0:
            await asyncio.sleep(pause)
        await response.write(chunk)
        state.stats.content_bytes_sent += len(chunk)
    if fault is not None:
        if request.transport is not None:
            request.transport.close()
        return Closed(200)
    await response.write_eof()
    return response
