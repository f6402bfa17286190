"""The fake API's content endpoint: deterministic bytes, Range, faults, redirect to storage."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vccasync.fake import Dataset, DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate
from vccasync.fake._content import (
    BLOCK_SIZE,
    content_bytes,
    content_chunks,
    content_sha256,
    parse_range,
)

V3 = "application/vnd.newvoicemedia.v3+json"
SPEC = DatasetSpec(seed=3, start=datetime(2025, 3, 1, tzinfo=UTC), days=8, per_day=20)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def auth_headers(http: aiohttp.ClientSession, srv: FakeVccServer) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": srv.client_id,
        "client_secret": srv.client_secret,
        "scope": "interaction-content:read",
    }
    async with http.post(f"{srv.auth_url}/connect/token", data=form) as resp:
        token = (await resp.json())["access_token"]
    return {"Authorization": f"Bearer {token}", "Accept": V3}


def first_piece(dataset: Dataset, media: str = "audio/wav") -> tuple[str, dict[str, Any]]:
    for item in dataset.visible():
        for piece in item["content"]:
            if piece["contentType"] == media and piece["contentLength"] > 3 * BLOCK_SIZE:
                return item["guid"], piece
    raise AssertionError("no such content in the dataset")


def url_of(srv: FakeVccServer, guid: str, key: str) -> str:
    return f"{srv.api_url}/interactions/{guid}/content/{key}"


# --- pure ------------------------------------------------------------------------------------


def test_bytes_are_deterministic_and_differ_by_key_and_block() -> None:
    data = content_bytes("g", "k", 3 * BLOCK_SIZE)
    assert data == content_bytes("g", "k", 3 * BLOCK_SIZE)
    assert data != content_bytes("g", "K", 3 * BLOCK_SIZE)
    assert data[:BLOCK_SIZE] != data[BLOCK_SIZE : 2 * BLOCK_SIZE]
    assert content_sha256("g", "k", len(data)) == hashlib.sha256(data).hexdigest()


@given(st.integers(0, 3 * BLOCK_SIZE), st.integers(0, 3 * BLOCK_SIZE))
def test_any_range_is_a_slice_of_the_whole(a: int, b: int) -> None:
    start, stop = min(a, b), max(a, b)
    whole = content_bytes("guid", "key", 3 * BLOCK_SIZE)
    assert b"".join(content_chunks("guid", "key", start, stop)) == whole[start:stop]


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=10-", 100) == (10, 100)
    assert parse_range("bytes=10-19", 100) == (10, 20)
    assert parse_range("bytes=90-500", 100) == (90, 100)
    assert parse_range("bytes=-30", 100) == (70, 100)
    assert parse_range("bytes=5-1", 100) is None  # invalid: ignored, whole content
    assert parse_range("items=1-2", 100) is None
    assert parse_range("bytes=0-1,5-6", 100) is None  # several ranges: not supported
    with pytest.raises(ValueError):
        parse_range("bytes=100-", 100)


def test_content_scale() -> None:
    small = generate(
        DatasetSpec(seed=SPEC.seed, start=SPEC.start, days=2, per_day=20, content_scale=0.01)
    )
    full = generate(DatasetSpec(seed=SPEC.seed, start=SPEC.start, days=2, per_day=20))
    for a, b in zip(small.visible(), full.visible(), strict=True):
        assert [c["contentKey"] for c in a["content"]] == [c["contentKey"] for c in b["content"]]
        for x, y in zip(a["content"], b["content"], strict=True):
            assert x["contentLength"] == max(1, int(y["contentLength"] * 0.01))


# --- server ----------------------------------------------------------------------------------


async def test_whole_content_and_ranges(dataset: Dataset, http: aiohttp.ClientSession) -> None:
    guid, piece = first_piece(dataset)
    key, length = piece["contentKey"], piece["contentLength"]
    whole = content_bytes(guid, key, length)
    async with FakeVccServer(dataset) as srv:
        headers = await auth_headers(http, srv)
        async with http.get(url_of(srv, guid, key), headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "audio/wav"
            assert resp.headers["Accept-Ranges"] == "bytes"
            assert await resp.read() == whole
        offset = BLOCK_SIZE + 17
        ranged = {**headers, "Range": f"bytes={offset}-"}
        async with http.get(url_of(srv, guid, key), headers=ranged) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes {offset}-{length - 1}/{length}"
            assert await resp.read() == whole[offset:]
        beyond = {**headers, "Range": f"bytes={length}-"}
        async with http.get(url_of(srv, guid, key), headers=beyond) as resp:
            assert resp.status == 416
            assert resp.headers["Content-Range"] == f"bytes */{length}"
        async with http.get(url_of(srv, guid, "no-such-key"), headers=headers) as resp:
            assert resp.status == 404
        async with http.get(url_of(srv, guid, key)) as resp:
            assert resp.status == 401
        assert srv.stats.content_requests == 5
        assert srv.stats.content_bytes_sent == 2 * length - offset


async def test_truncate_fault_cuts_the_body(dataset: Dataset, http: aiohttp.ClientSession) -> None:
    guid, piece = first_piece(dataset)
    config = FakeConfig(faults=FaultConfig(rate=1.0, kinds=("truncate",)))
    async with FakeVccServer(dataset, config) as srv:
        headers = await auth_headers(http, srv)
        async with http.get(url_of(srv, guid, piece["contentKey"]), headers=headers) as resp:
            assert resp.status == 200 and resp.content_length == piece["contentLength"]
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
        assert srv.stats.faults["truncate"] == 1


async def test_redirect_to_storage_on_another_host(
    dataset: Dataset, http: aiohttp.ClientSession
) -> None:
    guid, piece = first_piece(dataset)
    key, length = piece["contentKey"], piece["contentLength"]
    async with FakeVccServer(dataset, FakeConfig(content_redirect_host="localhost")) as srv:
        headers = await auth_headers(http, srv)
        url = url_of(srv, guid, key)
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            assert resp.status == 302
            location = resp.headers["Location"]
        assert location.startswith(f"http://localhost:{srv.port}/storage/{guid}/")
        async with http.get(location, headers={"Range": "bytes=5-"}) as resp:
            assert resp.status == 206
            assert await resp.read() == content_bytes(guid, key, length)[5:]
        assert srv.stats.storage_requests == 1
        assert srv.stats.storage_headers[0]["Range"] == "bytes=5-"
        assert "Authorization" not in srv.stats.storage_headers[0]


async def test_validators_if_range_and_reprocessing(http: aiohttp.ClientSession) -> None:
    dataset = generate(SPEC)  # its own: reprocessing changes the dataset
    guid, piece = first_piece(dataset)
    key, length = piece["contentKey"], piece["contentLength"]
    offset = BLOCK_SIZE + 17
    async with FakeVccServer(dataset) as srv:
        headers = await auth_headers(http, srv)
        url = url_of(srv, guid, key)
        async with http.get(url, headers=headers) as resp:
            etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
        assert etag.startswith('"') and modified.endswith(" GMT")
        for validator in (etag, modified):
            same = {**headers, "Range": f"bytes={offset}-", "If-Range": validator}
            async with http.get(url, headers=same) as resp:
                assert resp.status == 206 and resp.headers["ETag"] == etag
        for other in ('"other"', f"W/{etag}", "Mon, 01 Jan 2024 00:00:00 GMT"):
            stale = {**headers, "Range": f"bytes={offset}-", "If-Range": other}
            async with http.get(url, headers=stale) as resp:
                assert resp.status == 200 and await resp.read() == content_bytes(guid, key, length)

        first = srv.reprocess(guid, key)  # same length, other bytes, a later lastModified
        assert first["contentLength"] == length
        assert first["lastModified"] > piece["lastModified"]
        assert await get_piece(http, srv, headers, guid, key) == first
        stale = {**headers, "Range": f"bytes={offset}-", "If-Range": etag}
        async with http.get(url, headers=stale) as resp:
            assert resp.status == 200 and resp.headers["ETag"] != etag
            body = await resp.read()
        assert body == content_bytes(guid, key, length, srv.content_version(guid, key))
        assert body != content_bytes(guid, key, length)

        second = srv.reprocess(guid, key, length=length + 5)
        assert second["lastModified"] > first["lastModified"]
        assert (await get_piece(http, srv, headers, guid, key))["contentLength"] == length + 5
        async with http.get(url, headers=headers) as resp:
            tag = srv.content_version(guid, key)
            assert await resp.read() == content_bytes(guid, key, length + 5, tag)
        with pytest.raises(KeyError):
            srv.reprocess(guid, "no-such-key")


async def get_piece(
    http: aiohttp.ClientSession,
    srv: FakeVccServer,
    headers: dict[str, str],
    guid: str,
    key: str,
) -> dict[str, Any]:
    """The piece ``key`` as the search shows it now (through get-one)."""
    async with http.get(f"{srv.api_url}/interactions/{guid}", headers=headers) as resp:
        item = await resp.json()
    return next(c for c in item["content"] if c["contentKey"] == key)
