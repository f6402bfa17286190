"""Auth and retry rules, one case each, against aioresponses (exact requests, no network)."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from vccasync import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    ResponseValidationError,
    VccClient,
)
from vccasync.session import parse_retry_after

from .conftest import API, FAST, TOKEN_URL, token_answer

ONE = re.compile(re.escape(API) + r"/interactions/g1$")
SECRET = "s3cr3t-value"
ITEM = {
    "guid": "g1",
    "start": "2025-01-01T00:00:00Z",
    "connectFrom": 441,
    "handlingAgents": [],
    "content": [],
}


def client(**options: Any) -> VccClient:
    return VccClient(client_id="id-1", client_secret=SECRET, **{**FAST, **options})


def calls(m: aioresponses, method: str, url: str | re.Pattern[str]) -> list[Any]:
    found = []
    for (verb, called), requests in m.requests.items():
        if verb == method and (
            url.search(str(called)) if isinstance(url, re.Pattern) else str(called) == url
        ):
            found.extend(requests)
    return found


async def test_token_form_headers_and_caching(mocked: aioresponses) -> None:
    token_answer(mocked)
    mocked.get(ONE, payload=ITEM, repeat=True)
    async with client() as vcc:
        first = await vcc.interaction("g1")
        await vcc.interaction("g1")
    assert first.connect_from == "441"
    [post] = calls(mocked, "POST", TOKEN_URL)
    assert post.kwargs["data"] == {
        "grant_type": "client_credentials",
        "client_id": "id-1",
        "client_secret": SECRET,
        "scope": "interaction-content:read",
    }
    gets = calls(mocked, "GET", ONE)
    assert len(gets) == 2
    for get in gets:
        assert get.kwargs["headers"]["Accept"] == "application/vnd.newvoicemedia.v3+json"
        assert get.kwargs["headers"]["Authorization"] == "Bearer tok-1"


async def test_one_refresh_for_many_concurrent_waiters(mocked: aioresponses) -> None:
    async def slow_token(url: URL, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(0.05)
        return CallbackResult(payload={"access_token": "tok-1", "expires_in": 3600})

    mocked.post(TOKEN_URL, callback=slow_token, repeat=True)
    mocked.get(ONE, payload=ITEM, repeat=True)
    async with client() as vcc:
        await asyncio.gather(*(vcc.interaction("g1") for _ in range(20)))
    assert len(calls(mocked, "POST", TOKEN_URL)) == 1


async def test_401_refreshes_once_and_retries(mocked: aioresponses) -> None:
    token_answer(mocked, "old")
    token_answer(mocked, "new")
    mocked.get(ONE, status=401, payload={"message": "expired"})
    mocked.get(ONE, payload=ITEM)
    async with client() as vcc:
        assert (await vcc.interaction("g1")).guid == "g1"
    auths = [c.kwargs["headers"]["Authorization"] for c in calls(mocked, "GET", ONE)]
    assert auths == ["Bearer old", "Bearer new"]
    assert len(calls(mocked, "POST", TOKEN_URL)) == 2


async def test_second_401_is_final(mocked: aioresponses) -> None:
    token_answer(mocked, "old")
    token_answer(mocked, "new")
    mocked.get(ONE, status=401, repeat=True)
    async with client() as vcc:
        with pytest.raises(AuthenticationError, match="freshly issued token"):
            await vcc.interaction("g1")
    assert len(calls(mocked, "GET", ONE)) == 2


@pytest.mark.parametrize("status", [400, 401])
async def test_token_endpoint_refusal_is_final_and_secret_free(
    mocked: aioresponses, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.post(TOKEN_URL, status=status, payload={"error": "invalid_client"}, repeat=True)
    async with client() as vcc:
        results = await asyncio.gather(
            *(vcc.interaction("g1") for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, AuthenticationError) for r in results)
        with pytest.raises(AuthenticationError) as info:
            await vcc.interaction("g1")
        text = f"{info.value} {info.value!r} {vcc!r} {vcc.config!r} {vcc.session.tokens!r}"
    assert "invalid_client" in str(info.value) and "id-1" in str(info.value)
    assert SECRET not in text and SECRET not in caplog.text
    assert len(calls(mocked, "POST", TOKEN_URL)) == 1  # no retry loop, not even by waiters
    assert not calls(mocked, "GET", ONE)


async def test_token_refreshed_shortly_before_expiry(mocked: aioresponses) -> None:
    token_answer(mocked, "short", expires_in=1)
    token_answer(mocked, "next")
    mocked.get(ONE, payload=ITEM, repeat=True)
    async with client(token_refresh_margin=0.5) as vcc:
        await vcc.interaction("g1")
        await asyncio.sleep(0.95)  # past 90 % of its life: refreshed before the API refuses it
        await vcc.interaction("g1")
    auths = [c.kwargs["headers"]["Authorization"] for c in calls(mocked, "GET", ONE)]
    assert auths == ["Bearer short", "Bearer next"]


@pytest.mark.parametrize("retry_after", ["1", "0.4", "http-date"])
async def test_429_with_retry_after_is_honoured(mocked: aioresponses, retry_after: str) -> None:
    if retry_after == "http-date":
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    token_answer(mocked)
    mocked.get(ONE, status=429, headers={"Retry-After": retry_after})
    mocked.get(ONE, payload=ITEM)
    loop = asyncio.get_running_loop()
    async with client() as vcc:
        began = loop.time()
        await vcc.interaction("g1")
        waited = loop.time() - began
    expected = parse_retry_after(retry_after) or 0.0
    assert waited >= min(expected, 1.0) * 0.9  # HTTP-dates have whole-second resolution


async def test_429_pauses_every_request_of_the_client(mocked: aioresponses) -> None:
    loop = asyncio.get_running_loop()
    sent: list[tuple[str, float]] = []

    def record(name: str, status: int = 200, **extra: Any) -> Any:
        def callback(url: URL, **kwargs: Any) -> CallbackResult:
            sent.append((name, loop.time()))
            return CallbackResult(status=status, payload=ITEM | {"guid": name}, **extra)

        return callback

    token_answer(mocked)
    mocked.get(ONE, callback=record("g1", 429, headers={"Retry-After": "0.5"}))
    mocked.get(ONE, callback=record("g1"))
    other = re.compile(re.escape(API) + r"/interactions/g2$")
    mocked.get(other, callback=record("g2"))
    async with client() as vcc:
        first = asyncio.create_task(vcc.interaction("g1"))
        await asyncio.sleep(0.1)  # the 429 has arrived; g2 starts during the pause
        await asyncio.gather(first, vcc.interaction("g2"))
        assert vcc.stats.rate_limited == 1
    limited_at = sent[0][1]
    assert all(at - limited_at >= 0.45 for _, at in sent[1:]), sent


async def test_429_without_retry_after_backs_off_then_gives_up(mocked: aioresponses) -> None:
    token_answer(mocked, repeat=True)
    mocked.get(ONE, status=429)
    mocked.get(ONE, payload=ITEM)
    async with client() as vcc:
        assert (await vcc.interaction("g1")).guid == "g1"
    mocked.get(ONE, status=429, repeat=True)
    async with client(max_attempts=2) as vcc:
        with pytest.raises(RateLimitedError):
            await vcc.interaction("g1")
    assert len(calls(mocked, "GET", ONE)) == 2 + 4  # a 429 gets twice the attempts


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "payload": {"message": "boom"}},
        {"status": 502, "body": "<html>bad gateway</html>", "content_type": "text/html"},
        {"status": 503},
        {"exception": aiohttp.ServerDisconnectedError()},
        {"exception": aiohttp.ClientPayloadError("Response payload is not completed")},
        {"exception": TimeoutError()},
        {"status": 200, "body": '{"guid": "g1", "sta', "content_type": "application/json"},
        {"status": 200, "body": "<html>maintenance</html>", "content_type": "text/html"},
    ],
    ids=["500-json", "502-html", "503", "dropped", "truncated", "timeout", "cut-json", "html-200"],
)
async def test_transient_fault_then_success(mocked: aioresponses, fault: dict[str, Any]) -> None:
    token_answer(mocked)
    mocked.get(ONE, **fault)
    mocked.get(ONE, payload=ITEM)
    async with client() as vcc:
        assert (await vcc.interaction("g1")).guid == "g1"
        assert vcc.stats.retries == 1
    assert len(calls(mocked, "GET", ONE)) == 2


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 500}, APIStatusError),
        ({"exception": aiohttp.ServerDisconnectedError()}, APIConnectionError),
        ({"status": 200, "body": "not json"}, ResponseValidationError),
    ],
)
async def test_bounded_attempts(
    mocked: aioresponses, fault: dict[str, Any], error: type[Exception]
) -> None:
    token_answer(mocked)
    mocked.get(ONE, repeat=True, **fault)
    async with client(max_attempts=3) as vcc:
        with pytest.raises(error):
            await vcc.interaction("g1")
    assert len(calls(mocked, "GET", ONE)) == 3


async def test_client_errors_are_not_retried(mocked: aioresponses) -> None:
    token_answer(mocked)
    mocked.get(ONE, status=404, payload={"message": "no such interaction"})
    mocked.get(ONE, status=400, payload={"message": "bad request"})
    async with client() as vcc:
        with pytest.raises(NotFoundError, match="no such interaction"):
            await vcc.interaction("g1")
        with pytest.raises(APIStatusError) as info:
            await vcc.interaction("g1")
    assert info.value.status == 400
    assert len(calls(mocked, "GET", ONE)) == 2


async def test_rate_limiter_spaces_requests(mocked: aioresponses) -> None:
    token_answer(mocked, repeat=True)
    mocked.get(ONE, payload=ITEM, repeat=True)
    loop = asyncio.get_running_loop()
    async with client(requests_per_minute=600) as vcc:  # one request every 0.1 s
        began = loop.time()
        await asyncio.gather(*(vcc.interaction("g1") for _ in range(6)))
        assert loop.time() - began >= 0.45
    async with client(requests_per_minute=None) as vcc:
        began = loop.time()
        await asyncio.gather(*(vcc.interaction("g1") for _ in range(6)))
        assert loop.time() - began < 0.45


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_url": "http://api.example.com/x"}, "https"),
        ({"auth_url": "ftp://127.0.0.1/"}, "http"),
        ({"region": "mars"}, "region"),
        ({"client_secret": ""}, "required"),
        ({"concurrency": 0}, "concurrency"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
    ],
)
def test_bad_configuration(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        VccClient(**{"client_id": "id", "client_secret": "x", **options})


def test_loopback_http_allowed_and_env() -> None:
    vcc = VccClient(
        client_id="id",
        client_secret=SECRET,
        api_url="http://127.0.0.1:9/ic",
        auth_url="http://localhost:9/a",
    )
    assert vcc.config.token_url == "http://localhost:9/a/connect/token"
    env = {"VCC_CLIENT_ID": "env-id", "VCC_CLIENT_SECRET": SECRET, "VCC_REGION": "apac"}
    from_env = VccClient.from_env(env)
    assert from_env.config.api_url == "https://apac.api.newvoicemedia.com/interaction-content"
    assert from_env.config.token_url == "https://apac.cc.vonage.com/Auth/connect/token"
    assert SECRET not in repr(from_env) and SECRET not in repr(from_env.config)
    with pytest.raises(InvalidRequestError, match="VCC_CLIENT_ID"):
        VccClient.from_env({})


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("Tue, 31 Dec 2024 00:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
