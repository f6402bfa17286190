"""The only place that talks HTTP: one request core for every method.

Every request (search pages, one interaction, content streams, deletions, token requests)
goes through one exchange: wait for the budget, *then* take the token (a token never
expires while its request queues), send (GET follows redirects, the bearer goes only to
the API's origin), map the answer and count it. A 401 gets a new token and is sent again;
a further 401 is final only for a token issued after that request's budget wait. A 429
pauses every request of the client; 5xx, 408, transport failures, truncated or non-JSON
bodies go to the retry policy (tenacity); anything else raises from the error tree
(:func:`error_for_status`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
from attrs import define, field, frozen
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential
from yarl import URL

from .._config import ACCEPT, ClientConfig
from .._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseValidationError,
    VccError,
)
from .._jsonio import loads
from .._tracing import Tracing
from .auth import Token, TokenSource
from .ratelimit import RateLimiter

__all__ = [
    "Budget",
    "Session",
    "SessionStats",
    "error_for_status",
    "parse_retry_after",
    "path_segment",
    "smoothed",
]

log = logging.getLogger("vccasync")
T = TypeVar("T")
MAX_REDIRECTS = 10
MAX_TOKEN_TRIES = 4  # sends of one request with renewed tokens (401s), at most
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@define
class SessionStats:
    """Counters a progress display or a test can read while requests run."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    latency: float = 0.0  # seconds per answered request (moving average), 0 before the first


def smoothed(average: float, sample: float) -> float:
    """A moving average of seconds: the first sample (``average`` 0), then a fifth of each."""
    return 0.8 * average + 0.2 * sample if average else sample


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: seconds (maybe fractional) or an HTTP-date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_status(status: int, body: bytes, headers: Mapping[str, str], url: str) -> VccError:
    """The exception for a non-2xx answer (pure: no I/O)."""
    try:
        decoded = loads(body)
        detail = str(decoded.get("message") or decoded.get("error") or "")[:200]
    except (ValueError, AttributeError):
        detail = ""
    text = f"HTTP {status} from {url}" + (f": {detail}" if detail else "")
    if status == 404:
        return NotFoundError(text, status=status, url=url, detail=detail)
    if status == 403:
        return PermissionDeniedError(text, status=status, url=url, detail=detail)
    if status == 429:
        wait = parse_retry_after(headers.get("Retry-After"))
        return RateLimitedError(text, url=url, retry_after=wait)
    return APIStatusError(text, status=status, url=url, detail=detail)


def path_segment(text: str) -> str:
    """``text`` as one percent-encoded URL path segment (``/`` and dot-only names escaped)."""
    quoted = quote(text, safe="")
    # "." and ".." are unreserved yet mean "this/parent directory" in a path: escape them
    return quoted.replace(".", "%2E") if not quoted.strip(".") else quoted


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, APIStatusError):
        return exc.status == 429 or exc.status == 408 or exc.status >= 500
    if isinstance(exc, ResponseValidationError):
        return exc.transient
    return isinstance(exc, APIConnectionError)


class Budget(Protocol):
    """A rate limit waited for before the client's shared one (:class:`.RateLimiter` is one)."""

    async def acquire(self) -> None: ...


@frozen
class _Call:
    """One request as the core sends it; ``api`` False: the token endpoint (no bearer, no
    API budget, but the client-wide 429 pause)."""

    method: str
    url: URL
    params: Mapping[str, str] | None = None
    json: Any = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(factory=dict)
    scope: str | None = None
    budget: Budget | None = None
    guard: Callable[[], None] | None = None
    api: bool = True


class _Flight:
    """Counts one request in ``stats.in_flight`` from its first send (not its wait) to its end."""

    def __init__(self, stats: SessionStats) -> None:
        self._stats, self._on = stats, False

    def start(self) -> None:
        if not self._on:
            self._on = True
            self._stats.in_flight += 1
            self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)

    def stop(self) -> None:
        if self._on:
            self._on = False
            self._stats.in_flight -= 1


class Session:
    """Sends API requests for one client: every request shares one budget and a token per scope."""

    def __init__(
        self, config: ClientConfig, http: aiohttp.ClientSession, tracing: Tracing | None = None
    ) -> None:
        self._config = config
        self.tracing = tracing or Tracing.of_client(None, config.client_id, config.region)
        self._http = http
        self.limiter = RateLimiter(config.requests_per_minute, burst=config.burst)
        self.tokens = TokenSource(config, self._post_form)
        self.stats = SessionStats()
        self._backoff = wait_random_exponential(
            multiplier=config.backoff_initial, max=config.backoff_max
        )

    def __repr__(self) -> str:
        return f"Session(api_url={self._config.api_url!r})"

    @property
    def latency(self) -> float:
        """Seconds per answered request (moving average; 0 before the first answer)."""
        return self.stats.latency

    async def authenticate(self) -> None:
        """Get the read scope's token now: wrong credentials are one request, one clear error."""
        await self.tokens.token()

    async def spend_budget(self) -> None:
        """Wait for one slot of the shared request budget and spend it, sending nothing."""
        await self.limiter.acquire()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        parse: Callable[[bytes], T] = loads,
        scope: str | None = None,
        budget: Budget | None = None,
        guard: Callable[[], None] | None = None,
    ) -> T:
        """Send ``method`` to ``api_url + path`` (``path`` already percent-encoded) and
        ``parse`` the body, retrying what is transient (a body ``parse`` rejects with
        ``ValueError`` too). ``scope``: the token's (default: the read scope); ``budget``: a
        rate limit waited for before the client's shared one (deletions have their own);
        ``guard``: called after every wait, just before each send (retries included), to
        refuse it by raising (nothing is sent then)."""
        call = _Call(
            method,
            self._url(path),
            params=params,
            json=json,
            headers=headers or {},
            scope=scope,
            budget=budget,
            guard=guard,
        )
        return await self._call(call, parse)

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``api_url + path`` and decode the JSON body, retrying what is transient."""
        return await self.request("GET", path, params=params)

    async def get(
        self, path: str, params: Mapping[str, str] | None, parse: Callable[[bytes], T]
    ) -> T:
        """GET ``api_url + path`` and ``parse`` the body (see :meth:`request`)."""
        return await self.request("GET", path, params=params, parse=parse)

    def stream(
        self, path: str, headers: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """GET ``api_url + path`` (``path`` already percent-encoded) and lend the open 2xx response.

        One attempt, no retries (wrap it in :meth:`retrying`), through the same core as
        :meth:`request`; errors while the caller reads the body map to
        ``ResponseValidationError`` (truncated) or ``APIConnectionError``. Redirects are
        followed, and the bearer token is sent only to the API's own origin.
        """
        sent = {"Accept-Encoding": "identity", **(headers or {})}
        return self._exchange(_Call("GET", self._url(path), headers=sent))

    def retrying(self) -> AsyncRetrying:
        """The retry policy of every request, for callers that drive :meth:`stream` themselves."""
        return AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=self._stop,
            wait=self._wait,
            before_sleep=self._before_retry,
            reraise=True,
        )

    def _url(self, path: str) -> URL:
        return URL(self._config.api_url + path, encoded=True)

    async def _post_form(self, url: str, form: dict[str, str]) -> Any:
        """POST a token request through the core; returns the decoded JSON of a 2xx answer."""
        return await self._call(_Call("POST", URL(url), data=form, api=False), loads)

    async def _call(self, call: _Call, parse: Callable[[bytes], T]) -> T:
        """:meth:`_exchange` under the retry policy, reading and parsing the whole body."""
        async for attempt in self.retrying():
            with attempt:
                async with self._exchange(call) as resp:
                    body = await resp.read()
                try:
                    return parse(body)
                except ValueError as exc:
                    raise ResponseValidationError(
                        f"the body from {call.url.with_query(None)} is not JSON"
                        f" ({len(body)} bytes)",
                        transient=True,
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def _exchange(self, call: _Call) -> AsyncIterator[aiohttp.ClientResponse]:
        """One attempt of ``call``: lend the 2xx response, raise the error of any other.

        Counts the request while it runs (the caller's reading of the body included) and maps
        aiohttp's failures to the library's errors.
        """
        stats, flight = self.stats, _Flight(self.stats)
        try:
            resp = await self._authorized(call, flight)
            try:
                if resp.status >= 300:
                    stats.rate_limited += resp.status == 429
                    body = await resp.content.read(65_536)
                    where = str(resp.url.with_query(None))  # a signed URL's query is a secret
                    raise error_for_status(resp.status, body, resp.headers, where)
                if call.api:
                    self.limiter.speed_up()
                yield resp
            finally:
                resp.release()
        except aiohttp.ClientPayloadError as exc:
            raise ResponseValidationError(
                f"truncated body from {call.url.with_query(None)}: {exc}", transient=True
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise APIConnectionError(
                f"request to {call.url.with_query(None)} failed: {_describe(exc)}"
            ) from exc
        finally:
            flight.stop()

    async def _authorized(self, call: _Call, flight: _Flight) -> aiohttp.ClientResponse:
        """Wait for the budget, then take the token and send; a 401 gets a new token.

        The first 401 always gets one; a later one is final when its token was issued after
        this send's budget wait (the API refuses a fresh token), else the token aged in the
        queue and is renewed, after the next wait.
        """
        if not call.api:
            await self.limiter.wait_out_pause()
            return await self._send(call, None, flight)
        loop = asyncio.get_running_loop()
        stale: Token | None = None
        for sends in range(1, MAX_TOKEN_TRIES + 1):
            if call.budget is not None:
                await call.budget.acquire()
            await self.limiter.acquire()
            waited = loop.time()
            if stale is None:
                token = await self.tokens.current(call.scope)
            else:
                token = await self.tokens.refresh(stale.value, call.scope)
            if call.guard is not None:
                call.guard()
            resp = await self._send(call, token, flight)
            if resp.status != 401 or resp.url.origin() != call.url.origin():
                return resp
            resp.release()
            if sends > 1 and token.issued_at >= waited:
                break
            stale = token
        raise AuthenticationError(
            f"the API refused a freshly issued token (HTTP 401 from {call.url.with_query(None)})"
        )

    async def _send(
        self, call: _Call, token: Token | None, flight: _Flight
    ) -> aiohttp.ClientResponse:
        """Send ``call`` (a GET follows redirects); the bearer goes to the API origin only."""
        url, origin = call.url, call.url.origin()
        params, loop, stats = call.params, asyncio.get_running_loop(), self.stats
        for hop in range(MAX_REDIRECTS + 1):
            headers = dict(call.headers)
            if token is not None and url.origin() == origin:
                if hop:  # another API request: another slot of the budget
                    await self.limiter.acquire()
                headers.update({"Authorization": f"Bearer {token.value}", "Accept": ACCEPT})
                stats.requests += 1
            flight.start()
            began = loop.time()
            with self.tracing.request(call.method, url) as traced:
                resp = await self._http.request(
                    call.method,
                    url,
                    params=params,
                    json=call.json,
                    data=call.data,
                    headers=headers,
                    allow_redirects=False,
                )
                traced.answered(resp.status)
            if token is not None:
                took = loop.time() - began
                stats.latency = smoothed(stats.latency, took)
            location = resp.headers.get("Location")
            if call.method != "GET" or resp.status not in _REDIRECTS or not location:
                return resp
            resp.release()
            url, params = resp.url.join(URL(location)), None
        raise APIStatusError(
            f"more than {MAX_REDIRECTS} redirects, the last to {url.with_query(None)}",
            status=resp.status,
        )

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        limit = self._config.max_attempts * (2 if isinstance(exc, RateLimitedError) else 1)
        return state.attempt_number >= limit

    def _wait(self, state: RetryCallState) -> float:
        delay = float(self._backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError):
            # the whole account is over its limit: hold every request, not only this one
            pause = exc.retry_after if exc.retry_after is not None else delay
            self.limiter.slow_down()
            wait = min(pause, self._config.retry_after_max)
            self.limiter.pause(wait)
            self.tracing.retried(state.attempt_number, exc, wait, limited=True)
            return 0.0
        self.tracing.retried(state.attempt_number, exc, delay, limited=False)
        return delay

    def _before_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info("retrying after attempt %d: %s", state.attempt_number, exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
