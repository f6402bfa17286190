"""Tests of the fake VCC API (vccasync.fake), against the server on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vccasync.fake import (
    ALL_KINDS,
    Dataset,
    DatasetSpec,
    FakeConfig,
    FakeVccServer,
    FaultConfig,
    Query,
    decode_token,
    encode_token,
    generate,
    running_in_thread,
)
from vccasync.fake._instants import iso

V3 = "application/vnd.newvoicemedia.v3+json"
SCOPE = "interaction-content:read"
SPEC = DatasetSpec(days=15, per_day=150, tie_size=1200)
TIE_AT, TIE_SIZE = SPEC.resolved_tie or (SPEC.start, 0)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture
async def server(dataset: Dataset) -> AsyncIterator[FakeVccServer]:
    async with FakeVccServer(dataset) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def get_token(
    session: aiohttp.ClientSession, srv: FakeVccServer, **form: str
) -> dict[str, Any]:
    data = {
        "grant_type": "client_credentials",
        "client_id": srv.client_id,
        "client_secret": srv.client_secret,
        "scope": SCOPE,
        **form,
    }
    async with session.post(f"{srv.auth_url}/connect/token", data=data) as resp:
        body: dict[str, Any] = await resp.json()
        body["_status"] = resp.status
        return body


async def headers_for(session: aiohttp.ClientSession, srv: FakeVccServer) -> dict[str, str]:
    token = await get_token(session, srv)
    return {"Authorization": f"Bearer {token['access_token']}", "Accept": V3}


async def search(
    session: aiohttp.ClientSession, srv: FakeVccServer, headers: dict[str, str], **params: str
) -> tuple[int, Any]:
    async with session.get(f"{srv.api_url}/interactions", params=params, headers=headers) as r:
        return r.status, await r.json()


async def search_all(
    session: aiohttp.ClientSession, srv: FakeVccServer, headers: dict[str, str], **params: str
) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        status, body = await search(session, srv, headers, **params)
        assert status == 200, body
        pages += 1
        items += body["items"]
        token = body["meta"]["nextContinuationToken"]
        if token is None:
            return items, pages
        params["continuationToken"] = token


# --- dataset ---------------------------------------------------------------------------------


def test_generation_is_deterministic(dataset: Dataset) -> None:
    again = generate(SPEC)
    assert list(again.keys) == list(dataset.keys)
    assert [again.item(p) for p in range(0, len(again), 97)] == [
        dataset.item(p) for p in range(0, len(dataset), 97)
    ]
    other = generate(DatasetSpec(seed=1, days=15))
    assert other.item(0) != dataset.item(0)


def test_dataset_is_sorted_and_indexed(dataset: Dataset) -> None:
    keys = list(dataset.keys)
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for pos in (0, 17, len(dataset) // 2, len(dataset) - 1):
        item = dataset.item(pos)
        assert dataset.get(item["guid"]) == item
        assert keys[pos][1] == item["guid"] and iso(keys[pos][0]) == item["start"]
    assert dataset.get("00000000-0000-4000-8000-000000000000") is None


def test_dataset_quirks_present(dataset: Dataset) -> None:
    items = list(dataset.items)
    visible = list(dataset.visible())
    addresses = [i["connectFrom"] for i in items] + [i["connectTo"] for i in items]
    assert 14154204204 in addresses and any(type(a) is int for a in addresses)
    assert any(isinstance(a, str) and a.startswith("0") and a.isdigit() for a in addresses)
    assert any(isinstance(a, str) and "@" in a[1:] for a in addresses)
    assert any(isinstance(a, str) and a.startswith(("webchat:", "@")) for a in addresses)
    assert 0 < len(items) - len(visible) == sum(1 for i in items if i["content"] == [])
    starts = Counter(i["start"] for i in items)
    assert starts[iso(int(TIE_AT.timestamp() * 1000))] == TIE_SIZE
    for edge in [*SPEC.edges, SPEC.end]:
        assert starts[iso(int(edge.timestamp() * 1000))] >= 1
    assert any("." in s for s in starts) and sum("." not in s for s in starts) > len(starts) / 2
    contents = [c for i in visible for c in i["content"]]
    types = {c["type"] for c in contents}
    assert {"holographicRecording", "voicemail", "ivrAudioRecording", "chatTranscript"} <= types
    assert any(i.get("channel") == "voice" for i in items)
    assert any("sentimentScore" in i for i in items)
    assert any("sentimentScore" in c for c in contents)
    assert all("id" in c["owningAgent"] for c in contents if c["type"] == "voicemail")
    assert all("owningInteractionPlan" in c for c in contents if c["type"] == "ivrAudioRecording")
    assert any({"version", "duration"} <= c["properties"].keys() for c in contents)
    assert any(len(i["handlingAgents"]) > 1 for i in items)
    assert {i["direction"] for i in items} == {"inbound", "outbound"}


def test_busier_on_weekdays() -> None:
    data = generate(DatasetSpec(days=28, per_day=500, edge_every=None))
    per_weekday = Counter(datetime.fromisoformat(i).weekday() for i in map(iso, data.ms))
    assert min(per_weekday[d] for d in range(5)) > max(per_weekday[5], per_weekday[6])


@settings(max_examples=30, deadline=None)
@given(
    limit=st.integers(1, 400),
    offset_minutes=st.integers(0, 3 * 24 * 60),
    span_minutes=st.integers(0, 24 * 60),
)
def test_token_paging_matches_expected(limit: int, offset_minutes: int, span_minutes: int) -> None:
    data = generate(DatasetSpec(days=4, per_day=150, tie_size=50))
    start = SPEC.start + timedelta(minutes=offset_minutes)
    query = Query(start, start + timedelta(minutes=span_minutes))
    seen: list[str] = []
    after = None
    while True:
        found, more = data.search(query, after=after, limit=limit)
        seen += [data.guids[p] for p in found]
        if not more:
            break
        after = decode_token(encode_token(data.key(found[-1])))
    assert seen == [i["guid"] for i in data.expected(query.start, query.end)]


def test_token_codec() -> None:
    key = (1735725600250, "2480fc2c-bbd7-427c-9439-02f76583aef5")
    token = encode_token(key)
    assert base64.b64decode(token).decode().startswith("2025-01-01T10:00:00.250Z_")
    assert decode_token(token) == key
    for bad in ("", "not base64!", base64.b64encode(b"2025-01-01T10:00:00Z_x").decode()):
        assert decode_token(bad) is None


# --- search ----------------------------------------------------------------------------------


async def test_tie_larger_than_a_page_pages_exactly_once(
    server: FakeVccServer, session: aiohttp.ClientSession, dataset: Dataset
) -> None:
    headers = await headers_for(session, server)
    start, end = TIE_AT - timedelta(minutes=30), TIE_AT + timedelta(minutes=30)
    items, pages = await search_all(session, server, headers, start=z(start), end=z(end))
    guids = [i["guid"] for i in items]
    assert len(guids) == len(set(guids)) and pages >= 2
    assert guids == [i["guid"] for i in dataset.expected(start, end)]
    assert sum(i["start"] == z(TIE_AT) for i in items) == TIE_SIZE
    status, first = await search(session, server, headers, start=z(TIE_AT), end=z(TIE_AT))
    assert status == 200 and len(first["items"]) == 1000
    assert first["meta"]["nextContinuationToken"] is not None


async def test_search_shape_and_numbers(
    server: FakeVccServer, session: aiohttp.ClientSession, dataset: Dataset
) -> None:
    headers = await headers_for(session, server)
    params = {"start": z(SPEC.start), "end": z(SPEC.start + timedelta(hours=1)), "limit": "5"}
    url = f"{server.api_url}/interactions"
    async with session.get(url, params=params, headers=headers) as resp:
        raw = await resp.read()
        assert resp.status == 200 and resp.content_type == "application/json"
    assert b'"connectFrom":14154204204' in raw  # a JSON number, as the vendor serves it
    body = json.loads(raw)
    assert set(body) == {"items", "meta"} and len(body["items"]) <= 5
    assert body["items"][0]["start"] == "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"direction": "outbound"}, lambda i: i["direction"] == "outbound"),
        ({"direction": "inbound"}, lambda i: i["direction"] == "inbound"),
        ({"connectFrom": "1415"}, lambda i: str(i["connectFrom"]).startswith("1415")),
        ({"connectfrom": "01473"}, lambda i: str(i["connectFrom"]).startswith("01473")),
        ({"connectFrom": "+44"}, lambda i: str(i["connectFrom"]).startswith("+44")),
        ({"connectTo": "support@"}, lambda i: str(i["connectTo"]).startswith("support@")),
        ({"CONNECTTO": "22222"}, lambda i: i["connectTo"] == 22222),
        (
            {"handlingAgentId": "1342"},
            lambda i: {"id": "1342"} in i["handlingAgents"],
        ),
    ],
)
async def test_filters(
    server: FakeVccServer,
    session: aiohttp.ClientSession,
    dataset: Dataset,
    params: dict[str, str],
    predicate: Any,
) -> None:
    headers = await headers_for(session, server)
    start, end = SPEC.start, SPEC.start + timedelta(days=7)
    items, _ = await search_all(session, server, headers, start=z(start), end=z(end), **params)
    assert items and all(predicate(i) for i in items)
    kw = {k.lower(): v for k, v in params.items()}
    expected = dataset.expected(
        start,
        end,
        direction=kw.get("direction"),
        connect_from=kw.get("connectfrom"),
        connect_to=kw.get("connectto"),
        handling_agent_id=kw.get("handlingagentid"),
    )
    assert items == expected
    everything = [
        i for i in dataset.visible() if start <= datetime.fromisoformat(i["start"]) <= end
    ]
    assert items == [i for i in everything if predicate(i)]


async def test_unknown_agent_and_prefix_match_nothing(
    server: FakeVccServer, session: aiohttp.ClientSession
) -> None:
    headers = await headers_for(session, server)
    window = {"start": z(SPEC.start), "end": z(SPEC.start + timedelta(days=7))}
    for extra in ({"handlingAgentId": "999999"}, {"connectFrom": "zzz"}):
        status, body = await search(session, server, headers, **window, **extra)
        assert status == 200 and body == {"items": [], "meta": {"nextContinuationToken": None}}


@pytest.mark.parametrize("end_inclusive", [True, False])
async def test_end_inclusive_or_exclusive(
    dataset: Dataset, session: aiohttp.ClientSession, end_inclusive: bool
) -> None:
    edge = SPEC.edges[1]
    start, end = edge - timedelta(days=7), edge
    config = FakeConfig(end_inclusive=end_inclusive)
    async with FakeVccServer(dataset, config) as srv:
        headers = await headers_for(session, srv)
        items, _ = await search_all(session, srv, headers, start=z(start), end=z(end))
    starts = [i["start"] for i in items]
    assert starts[0] == z(start)  # start is always inclusive
    assert (z(edge) in starts) is end_inclusive
    assert "2025-01-07T23:59:59.999Z" in starts
    assert items == dataset.expected(start, end, end_inclusive=end_inclusive)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-08T00:00:00.001Z"},  # > 7 days
        {"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"},  # end < start
        {"end": "2025-01-02T00:00:00Z"},
        {"start": "2025-01-01T00:00:00", "end": "2025-01-02T00:00:00Z"},  # no time zone
        {"start": "yesterday", "end": "2025-01-02T00:00:00Z"},
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "limit": "0"},
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "limit": "1001"},
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "limit": "ten"},
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "direction": "up"},
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "connectTo": "1" * 51},
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "connectFrom": ""},
        {
            "start": "2025-01-01T00:00:00Z",
            "end": "2025-01-02T00:00:00Z",
            "continuationToken": "bm90IGEgdG9rZW4=",
        },
    ],
)
async def test_bad_requests_are_400(
    server: FakeVccServer, session: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    headers = await headers_for(session, server)
    status, body = await search(session, server, headers, **params)
    assert status == 400 and isinstance(body["message"], str)


async def test_valid_time_formats(server: FakeVccServer, session: aiohttp.ClientSession) -> None:
    headers = await headers_for(session, server)
    for start, end in [
        ("2025-01-01T00:00:00Z", "2025-01-08T00:00:00Z"),  # exactly 7 days
        ("2025-01-01T01:00:00+01:00", "2025-01-02T00:00:00.123456Z"),
        ("2025-01-01T00:00:00.5Z", "2025-01-01T00:00:00.5Z"),
    ]:
        status, _ = await search(session, server, headers, start=start, end=end)
        assert status == 200, (start, end)


async def test_accept_and_bearer_required(
    server: FakeVccServer, session: aiohttp.ClientSession
) -> None:
    headers = await headers_for(session, server)
    window = {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}
    for accept in ("application/vnd.newvoicemedia.v2+json", "application/json", "*/*"):
        status, body = await search(session, server, {**headers, "Accept": accept}, **window)
        assert status == 400 and "message" in body
    ok = {**headers, "Accept": f"application/json, {V3};q=0.9"}
    assert (await search(session, server, ok, **window))[0] == 200
    for auth in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        status, body = await search(session, server, {"Accept": V3, **auth}, **window)
        assert status == 401 and "message" in body


async def test_get_one(
    server: FakeVccServer, session: aiohttp.ClientSession, dataset: Dataset
) -> None:
    headers = await headers_for(session, server)
    shown = next(p for p in range(len(dataset)) if dataset.has_content(p))
    hidden = next(p for p in range(len(dataset)) if not dataset.has_content(p))
    url = f"{server.api_url}/interactions/"
    async with session.get(url + dataset.guids[shown], headers=headers) as resp:
        assert resp.status == 200 and await resp.json() == dataset.item(shown)
    for guid in (dataset.guids[hidden], "00000000-0000-4000-8000-000000000000"):
        async with session.get(url + guid, headers=headers) as resp:
            assert resp.status == 404 and "message" in await resp.json()
    async with session.get(url + dataset.guids[shown], headers={"Accept": V3}) as resp:
        assert resp.status == 401
    assert server.stats.get_requests == 4


# --- auth ------------------------------------------------------------------------------------


async def test_token_endpoint(server: FakeVccServer, session: aiohttp.ClientSession) -> None:
    good = await get_token(session, server)
    assert good["_status"] == 200 and good["token_type"] == "Bearer"
    assert good["expires_in"] == 3600 and isinstance(good["expires_in"], int)
    assert (await get_token(session, server, client_secret="wrong"))["error"] == "invalid_client"
    assert (await get_token(session, server, client_id="who"))["_status"] == 400
    bad_scope = await get_token(session, server, scope="interaction-content:write")
    assert bad_scope == {"error": "invalid_scope", "_status": 400}
    both = await get_token(session, server, scope=f"interaction-content:delete {SCOPE}")
    assert both["_status"] == 200
    pair = f"{server.client_id}:{server.client_secret}".encode()
    basic = {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    form = {"grant_type": "client_credentials", "scope": SCOPE}
    url = f"{server.url}/Auth/connect/token"  # the vendor's capitalisation works too
    async with session.post(url, data=form, headers=basic) as resp:
        assert resp.status == 200 and "access_token" in await resp.json()
    assert server.stats.token_requests == 6


async def test_token_expires(dataset: Dataset, session: aiohttp.ClientSession) -> None:
    async with FakeVccServer(dataset, FakeConfig(token_ttl=0.5)) as srv:
        token = await get_token(session, srv)
        assert token["expires_in"] == 0.5
        headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": V3}
        window = {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}
        assert (await search(session, srv, headers, **window))[0] == 200
        await asyncio.sleep(0.6)
        status, body = await search(session, srv, headers, **window)
        assert status == 401 and "message" in body


# --- faults and limits -----------------------------------------------------------------------


async def faulty(dataset: Dataset, kind: str, **kw: Any) -> FakeVccServer:
    return FakeVccServer(dataset, FakeConfig(faults=FaultConfig(rate=1.0, kinds=(kind,), **kw)))


WINDOW = {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}


async def test_fault_drop(dataset: Dataset, session: aiohttp.ClientSession) -> None:
    async with await faulty(dataset, "drop") as srv:
        headers = await headers_for(session, srv)
        with pytest.raises(aiohttp.ClientConnectionError):
            await search(session, srv, headers, **WINDOW)
        assert srv.stats.faults["drop"] >= 1 and srv.stats.statuses[0] >= 1


async def test_fault_truncate(dataset: Dataset, session: aiohttp.ClientSession) -> None:
    async with await faulty(dataset, "truncate") as srv:
        headers = await headers_for(session, srv)
        url = f"{srv.api_url}/interactions"
        async with session.get(url, params=WINDOW, headers=headers) as resp:
            assert resp.status == 200 and resp.content_length
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
        assert srv.stats.faults["truncate"] == 1 and srv.stats.records[-1].status == 200


async def test_fault_stall(dataset: Dataset, session: aiohttp.ClientSession) -> None:
    async with await faulty(dataset, "stall", stall_seconds=0.3) as srv:
        headers = await headers_for(session, srv)
        url = f"{srv.api_url}/interactions"
        timeout = aiohttp.ClientTimeout(total=0.1)
        with pytest.raises(asyncio.TimeoutError):
            async with session.get(url, params=WINDOW, headers=headers, timeout=timeout):
                pass
        assert (await search(session, srv, headers, **WINDOW))[0] == 200
        assert srv.stats.faults["stall"] == 2 and srv.stats.statuses[200] >= 1


async def test_fault_429_retry_after_forms(
    dataset: Dataset, session: aiohttp.ClientSession
) -> None:
    async with await faulty(dataset, "429", retry_after="2") as srv:
        headers = await headers_for(session, srv)
        seen = []
        for _ in range(3):
            url = f"{srv.api_url}/interactions"
            async with session.get(url, params=WINDOW, headers=headers) as resp:
                assert resp.status == 429
                seen.append(resp.headers["Retry-After"])
    assert seen[:2] == ["2", "0.3"]
    assert parsedate_to_datetime(seen[2]) > datetime.now(UTC) - timedelta(seconds=1)


@pytest.mark.parametrize(
    ("kind", "statuses", "media"),
    [
        ("500", {500, 503}, "application/json"),
        ("502-html", {502, 504}, "text/html"),
        ("429-bare", {429}, "application/json"),
        ("bad-json", {200}, None),
    ],
)
async def test_fault_answers(
    dataset: Dataset,
    session: aiohttp.ClientSession,
    kind: str,
    statuses: set[int],
    media: str | None,
) -> None:
    async with await faulty(dataset, kind) as srv:
        headers = await headers_for(session, srv)
        url = f"{srv.api_url}/interactions"
        for _ in range(4):
            async with session.get(url, params=WINDOW, headers=headers) as resp:
                assert resp.status in statuses and "Retry-After" not in resp.headers
                assert media is None or resp.content_type == media
                text = await resp.text()
            if kind == "bad-json":
                with pytest.raises(ValueError):
                    json.loads(text)
            elif media == "application/json":
                assert "message" in json.loads(text)
        assert srv.stats.faults == Counter({kind: 4})


async def test_faults_are_deterministic_and_retries_succeed(
    dataset: Dataset, session: aiohttp.ClientSession
) -> None:
    config = FakeConfig(faults=FaultConfig(rate=0.5, kinds=("500", "429-bare"), seed=7))
    runs = []
    for _ in range(2):
        async with FakeVccServer(dataset, config) as srv:
            headers = await headers_for(session, srv)
            runs.append([(await search(session, srv, headers, **WINDOW))[0] for _ in range(30)])
    assert runs[0] == runs[1]
    assert 200 in runs[0] and {429, 500, 503} & set(runs[0])


async def test_token_faults_only_when_enabled(
    dataset: Dataset, session: aiohttp.ClientSession
) -> None:
    faults = FaultConfig(rate=1.0, kinds=("500",))
    async with FakeVccServer(dataset, FakeConfig(faults=faults)) as srv:
        assert (await get_token(session, srv))["_status"] == 200
    async with FakeVccServer(dataset, FakeConfig(faults=faults, token_faults=True)) as srv:
        assert (await get_token(session, srv))["_status"] in (500, 503)
    stall = FaultConfig(rate=1.0, kinds=("stall",), stall_seconds=0.1)
    async with FakeVccServer(dataset, FakeConfig(faults=stall, token_faults=True)) as srv:
        assert "access_token" in await get_token(session, srv)
        assert srv.stats.faults == Counter({"stall": 1})
    assert "500" in ALL_KINDS and len(ALL_KINDS) == 8


async def test_server_rate_limit(dataset: Dataset, session: aiohttp.ClientSession) -> None:
    config = FakeConfig(rate_limit_per_minute=3, rate_limit_window=0.5)
    async with FakeVccServer(dataset, config) as srv:
        headers = await headers_for(session, srv)
        url = f"{srv.api_url}/interactions"
        statuses = []
        for _ in range(4):
            async with session.get(url, params=WINDOW, headers=headers) as resp:
                statuses.append(resp.status)
                retry_after = resp.headers.get("Retry-After")
        assert statuses == [200, 200, 200, 429] and retry_after == "1"
        assert srv.stats.rate_limited == 1
        await asyncio.sleep(0.55)
        assert (await search(session, srv, headers, **WINDOW))[0] == 200


async def test_max_in_flight_and_records(dataset: Dataset, session: aiohttp.ClientSession) -> None:
    async with FakeVccServer(dataset, FakeConfig(page_latency=0.2)) as srv:
        headers = await headers_for(session, srv)
        results = await asyncio.gather(
            *(search(session, srv, headers, **WINDOW, limit=str(n + 1)) for n in range(6))
        )
        assert [s for s, _ in results] == [200] * 6
        stats = srv.stats
        assert stats.max_in_flight == 6 and stats.in_flight == 0
        assert stats.requests == 7 and stats.search_requests == 6
        assert sorted(r.query["limit"] for r in stats.records) == [str(n + 1) for n in range(6)]
        assert all(r.path.endswith("/interactions") and r.status == 200 for r in stats.records)
        srv.reset_stats()
        assert srv.stats.requests == 0 and srv.stats.records == []


# --- running it ------------------------------------------------------------------------------


def test_running_in_thread(dataset: Dataset) -> None:
    with running_in_thread(dataset) as srv:
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": srv.client_id,
                "client_secret": srv.client_secret,
                "scope": SCOPE,
            }
        ).encode()
        with urllib.request.urlopen(f"{srv.auth_url}/connect/token", form, timeout=5) as resp:
            token = json.load(resp)["access_token"]
        query = urllib.parse.urlencode({**WINDOW, "limit": "3"})
        request = urllib.request.Request(
            f"{srv.api_url}/interactions?{query}",
            headers={"Authorization": f"Bearer {token}", "Accept": V3},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert len(json.load(resp)["items"]) == 3
        assert srv.url.startswith("http://127.0.0.1:") and srv.stats.search_requests == 1
        url = srv.url
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=1)


# --- paging order and the gate -----------------------------------------------------------


@pytest.mark.parametrize("order", ["start", "guid", "hour"])
async def test_paging_orders_cover_the_window_once(
    dataset: Dataset, session: aiohttp.ClientSession, order: str
) -> None:
    window = {"start": "2025-01-02T00:00:00Z", "end": "2025-01-05T00:00:00Z", "limit": "97"}
    async with FakeVccServer(dataset, FakeConfig(order=order)) as srv:  # type: ignore[arg-type]
        items, pages = await search_all(session, srv, await headers_for(session, srv), **window)
    want = dataset.expected(datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 5, tzinfo=UTC))
    assert sorted(i["guid"] for i in items) == sorted(i["guid"] for i in want)
    assert len(items) == len(want) and pages == -(-len(want) // 97)
    guids = [i["guid"] for i in items]
    starts = [i["start"] for i in items]
    if order == "start":
        assert items == want
    elif order == "guid":
        assert guids == sorted(guids) and starts != sorted(starts)
    else:  # each page sorted by start, the whole not
        assert all(starts[k : k + 97] == sorted(starts[k : k + 97]) for k in range(0, 999, 97))
        assert starts != sorted(starts)


def test_unknown_paging_order_is_refused() -> None:
    with pytest.raises(ValueError, match="order"):
        FakeConfig(order="random")  # type: ignore[arg-type]


async def test_gate_holds_answers_until_opened(
    dataset: Dataset, session: aiohttp.ClientSession
) -> None:
    async with FakeVccServer(dataset, FakeConfig(hold_after=2)) as srv:
        headers = await headers_for(session, srv)
        for _ in range(2):
            assert (await search(session, srv, headers, **WINDOW))[0] == 200
        third = asyncio.ensure_future(search(session, srv, headers, **WINDOW))
        assert await srv.gate.until_held(10)
        assert not third.done() and srv.gate.held == 1 and srv.gate.passed == 2
        assert (await get_token(session, srv))["_status"] == 200  # tokens are not held
        srv.gate.open()
        assert (await third)[0] == 200
        assert srv.gate.passed == 3 and srv.gate.held == 0
        srv.gate.hold_after(0)
        cancelled = asyncio.ensure_future(search(session, srv, headers, **WINDOW))
        assert await srv.gate.until_held(10)
        cancelled.cancel()  # the client goes away: the held request is dropped
        for _ in range(500):
            if not srv.gate.held:
                break
            await asyncio.sleep(0.01)
        assert srv.gate.held == 0 and srv.gate.passed == 3
    with pytest.raises(ValueError):
        srv.gate.hold_after(-1)


def test_gate_control_endpoint_of_a_fake_in_another_process() -> None:
    argv = [sys.executable, "-m", "vccasync.fake", "--port", "0", "--days", "2"]
    argv += ["--hold-after", "0", "--order", "guid"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(5)]
            root = lines[1].split()[-1].removesuffix("/interaction-content")
            secret = lines[4].split()[-1]
            form = urllib.parse.urlencode(
                {"grant_type": "client_credentials", "client_id": "demo-client",
                 "client_secret": secret, "scope": SCOPE}
            ).encode()  # fmt: skip
            with urllib.request.urlopen(f"{root}/auth/connect/token", form, timeout=5) as r:
                token = json.load(r)["access_token"]
            request = urllib.request.Request(
                f"{root}/interaction-content/interactions?{urllib.parse.urlencode(WINDOW)}",
                headers={"Authorization": f"Bearer {token}", "Accept": V3},
            )
            with pytest.raises(TimeoutError):  # held: no answer
                urllib.request.urlopen(request, timeout=1)
            with urllib.request.urlopen(f"{root}/_fake/gate", timeout=5) as r:
                assert json.load(r)["passed"] == 0
            opened = urllib.request.Request(f"{root}/_fake/gate?open=1", method="POST")
            with urllib.request.urlopen(opened, timeout=5) as r:
                assert json.load(r)["passed"] == 0
            with urllib.request.urlopen(request, timeout=5) as r:
                items = json.load(r)["items"]
            guids = [i["guid"] for i in items]
            assert len(guids) > 1 and guids == sorted(guids)
            hold = urllib.request.Request(f"{root}/_fake/gate?hold_after=x", method="POST")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(hold, timeout=5)
            assert refused.value.code == 400
        finally:
            proc.terminate()


@pytest.fixture
def cli_server() -> Iterator[subprocess.Popen[str]]:
    argv = [sys.executable, "-m", "vccasync.fake", "--port", "0", "--days", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    yield proc
    proc.terminate()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_module_entry_point(cli_server: subprocess.Popen[str]) -> None:
    assert cli_server.stdout is not None
    lines = [cli_server.stdout.readline() for _ in range(3)]
    assert "interactions" in lines[0]
    assert lines[1].split()[-1].startswith("http://127.0.0.1:")
    assert lines[2].split()[-1].endswith("/auth/connect/token")
