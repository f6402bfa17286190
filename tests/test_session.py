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
    DeleteFailure,
    DeleteOutcome,
    InvalidRequestError,
    InvalidTypeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseValidationError,
    VccClient,
)
from vccasync._http.session import parse_retry_after

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


async def test_a_token_that_expires_during_the_budget_wait_is_not_sent(
    mocked: aioresponses,
) -> None:
    token_answer(mocked, "short", expires_in=1)  # replaced 0.9 s after it was asked for
    token_answer(mocked, "next")
    mocked.get(ONE, payload=ITEM, repeat=True)
    async with client(requests_per_minute=120) as vcc:  # one request every 0.5 s
        await asyncio.gather(*(vcc.interaction("g1") for _ in range(3)))
    auths = [c.kwargs["headers"]["Authorization"] for c in calls(mocked, "GET", ONE)]
    assert auths == ["Bearer short", "Bearer short", "Bearer next"]  # the third waited 1 s


async def test_a_token_that_aged_in_the_queue_is_renewed_again(mocked: aioresponses) -> None:
    """The server drops tokens early (A after 0.2 s, B after 0.3 s). Three requests queue at
    one every 0.5 s: the first sends A; the other two get a 401 for A; the second renews it
    (B); the third takes B only after its own wait, when the server has dropped it: B was
    issued before that wait, so it is renewed once more (C) rather than declared refused."""
    loop = asyncio.get_running_loop()
    first_use: dict[str, float] = {}
    life = {"A": 0.2, "B": 0.3, "C": 60.0}

    def answer(url: URL, **kwargs: Any) -> CallbackResult:
        token = kwargs["headers"]["Authorization"].removeprefix("Bearer ")
        if loop.time() - first_use.setdefault(token, loop.time()) > life[token]:
            return CallbackResult(status=401, payload={"message": "expired"})
        return CallbackResult(payload=ITEM)

    for name in life:
        token_answer(mocked, name)
    mocked.get(ONE, callback=answer, repeat=True)
    async with client(requests_per_minute=120) as vcc:  # one request every 0.5 s
        await asyncio.gather(*(vcc.interaction("g1") for _ in range(3)))
    auths = [c.kwargs["headers"]["Authorization"][7:] for c in calls(mocked, "GET", ONE)]
    assert auths == ["A", "A", "A", "B", "B", "C"]
    assert len(calls(mocked, "POST", TOKEN_URL)) == 3


async def test_a_token_issued_after_the_wait_and_refused_is_final(mocked: aioresponses) -> None:
    token_answer(mocked, "A")
    token_answer(mocked, "B")
    mocked.get(ONE, status=401, repeat=True)
    async with client(requests_per_minute=120) as vcc:
        with pytest.raises(AuthenticationError, match="freshly issued token"):
            await vcc.interaction("g1")
    assert len(calls(mocked, "GET", ONE)) == 2  # A, then B taken after its wait: final
    assert len(calls(mocked, "POST", TOKEN_URL)) == 2


DELETE_ONE = re.compile(re.escape(API) + r"/interactions/g1$")
BATCH = f"{API}/interactions/delete-batch"


async def test_delete_goes_through_the_retries_and_the_429_pause(mocked: aioresponses) -> None:
    loop = asyncio.get_running_loop()
    sent: list[tuple[str, float]] = []

    def record(name: str, status: int, **extra: Any) -> Any:
        def callback(url: URL, **kwargs: Any) -> CallbackResult:
            sent.append((name, loop.time()))
            return CallbackResult(status=status, **extra)

        return callback

    mocked.post(TOKEN_URL, callback=scoped_tokens, repeat=True)
    mocked.delete(DELETE_ONE, callback=record("delete", 503))
    mocked.delete(DELETE_ONE, callback=record("delete", 429, headers={"Retry-After": "0.5"}))
    mocked.delete(DELETE_ONE, callback=record("delete", 204))
    mocked.delete(DELETE_ONE, status=404, payload={"message": "gone"})
    mocked.get(ONE, callback=record("get", 200, payload=ITEM))
    async with client(deletes_per_minute=None) as vcc:
        deleting = asyncio.create_task(vcc.delete_interaction("g1"))
        await asyncio.sleep(0.1)  # the 429 has arrived; the read starts during the pause
        assert len(sent) == 2
        await vcc.interaction("g1")
        assert await deleting is DeleteOutcome.DELETED
        assert vcc.stats.retries == 2 and vcc.stats.rate_limited == 1
        assert await vcc.delete_interaction("g1") is DeleteOutcome.ALREADY_GONE
    limited_at = sent[1][1]
    assert [name for name, _ in sent] == ["delete", "delete", "delete", "get"] or [
        name for name, _ in sent
    ] == ["delete", "delete", "get", "delete"]
    assert all(at - limited_at >= 0.45 for _, at in sent[2:]), sent
    deletes = calls(mocked, "DELETE", DELETE_ONE)
    assert {c.kwargs["headers"]["Authorization"] for c in deletes} == {"Bearer delete-token"}
    [get] = calls(mocked, "GET", ONE)
    assert get.kwargs["headers"]["Authorization"] == "Bearer read-token"


def scoped_tokens(url: URL, **kwargs: Any) -> CallbackResult:
    """A token named after the scope asked for."""
    scope = kwargs["data"]["scope"].removeprefix("interaction-content:")
    return CallbackResult(payload={"access_token": f"{scope}-token", "expires_in": 3600})


async def test_delete_batch_posts_json_and_retries(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, callback=scoped_tokens, repeat=True)
    mocked.post(BATCH, status=502, body="<html>bad gateway</html>", content_type="text/html")
    failure = {"guid": "g2", "message": "Invalid guid.", "statusCode": 400}
    gone = {"guid": "g3", "message": "Not found.", "statusCode": 404}
    mocked.post(BATCH, payload={"failures": [failure, gone]})
    async with client(deletes_per_minute=None) as vcc:
        failures = await vcc.delete_interactions(["g1", "g2", "g3", "g1"])
        assert vcc.stats.retries == 1
    assert failures == [DeleteFailure("g2", "Invalid guid.", 400)]
    posts = calls(mocked, "POST", BATCH)
    assert [p.kwargs["json"] for p in posts] == [{"guids": ["g1", "g2", "g3"]}] * 2
    assert {p.kwargs["headers"]["Authorization"] for p in posts} == {"Bearer delete-token"}


async def test_a_403_on_delete_is_final_and_a_refused_delete_scope_spares_reads(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, callback=scoped_tokens)
    mocked.delete(DELETE_ONE, status=403, payload={"message": "Forbidden"})
    async with client(deletes_per_minute=None) as vcc:
        with pytest.raises(PermissionDeniedError, match="interaction-content:delete"):
            await vcc.delete_interaction("g1")
        assert vcc.stats.retries == 0
    assert len(calls(mocked, "DELETE", DELETE_ONE)) == 1

    def refuse_delete(url: URL, **kwargs: Any) -> CallbackResult:
        if "delete" in kwargs["data"]["scope"]:
            return CallbackResult(status=400, payload={"error": "invalid_scope"})
        return scoped_tokens(url, **kwargs)

    mocked.post(TOKEN_URL, callback=refuse_delete, repeat=True)
    mocked.get(ONE, payload=ITEM, repeat=True)
    async with client(deletes_per_minute=None) as vcc:
        for _ in range(2):
            with pytest.raises(AuthenticationError, match="invalid_scope"):
                await vcc.delete_content("g1", "rec")
        assert (await vcc.interaction("g1")).guid == "g1"
    assert len(calls(mocked, "POST", TOKEN_URL)) == 1 + 2  # the refusal is remembered


def test_options_of_the_wrong_type_are_invalid_requests() -> None:
    for options in ({"concurrency": "x"}, {"requests_per_minute": "10"}, {"timeout": None}):
        with pytest.raises(InvalidTypeError, match=next(iter(options))) as info:
            client(**options)
        assert isinstance(info.value, TypeError) and isinstance(info.value, InvalidRequestError)
    with pytest.raises(InvalidTypeError, match="concurency"):
        client(concurency=4)
    env = {"VCC_CLIENT_ID": "env-id", "VCC_CLIENT_SECRET": SECRET}
    assert VccClient.from_env(env, requests_per_minute=None).config.requests_per_minute is None
    assert VccClient.from_env(env, region=None).config.region == "emea"


@pytest.mark.parametrize(
    "call",
    [
        lambda vcc: vcc.interactions("2025-01-01", "2025-01-02", limit="10"),
        lambda vcc: vcc.interactions(20250101, "2025-01-02"),
        lambda vcc: vcc.interactions("2025-01-01", object()),
    ],
)
async def test_mistyped_search_arguments_fail_before_any_request(
    mocked: aioresponses, call: Any
) -> None:
    async with client() as vcc:
        with pytest.raises(InvalidRequestError):
            call(vcc)
    assert not mocked.requests


async def test_mistyped_bulk_options_fail_before_any_request(
    mocked: aioresponses, tmp_path: Any
) -> None:
    async with client() as vcc:
        search = vcc.interactions("2025-01-01", "2025-01-02")
        for workers, error in (("x", InvalidTypeError), (0, InvalidRequestError)):
            with pytest.raises(error, match="workers"):
                await vcc.download_all(search, tmp_path, workers=workers)  # type: ignore[arg-type]
    assert not mocked.requests
