"""The only place that talks HTTP: auth header, rate budget, retries, error mapping."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from attrs import define
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential
from yarl import URL

from .auth import TokenSource
from .config import ACCEPT, ClientConfig
from .converter import loads
from .errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    ResponseValidationError,
    VccError,
)
from .ratelimit import RateLimiter

__all__ = ["Session", "SessionStats", "error_for_status", "parse_retry_after", "path_segment"]

log = logging.getLogger("vccasync")
T = TypeVar("T")
MAX_REDIRECTS = 10
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
        detail = str(loads(body).get("message") or "")
    except (ValueError, AttributeError):
        detail = ""
    text = f"HTTP {status} from {url}" + (f": {detail[:200]}" if detail else "")
    if status == 404:
        return NotFoundError(text, status=status, url=url)
    if status == 429:
        wait = parse_retry_after(headers.get("Retry-After"))
        return RateLimitedError(text, url=url, retry_after=wait)
    return APIStatusError(text, status=status, url=url)


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


class Session:
    """Sends API requests for one client: every request shares one token and one budget."""

    def __init__(self, config: ClientConfig, http: aiohttp.ClientSession) -> None:
        self._config = config
        self._http = http
        self.limiter = RateLimiter(config.requests_per_minute)
        self.tokens = TokenSource(config, self._post_form)
        self.stats = SessionStats()
        self._backoff = wait_random_exponential(
            multiplier=config.backoff_initial, max=config.backoff_max
        )

    def __repr__(self) -> str:
        return f"Session(api_url={self._config.api_url!r})"

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``api_url + path`` and decode the JSON body, retrying what is transient."""
        return await self.get(path, params, loads)

    async def get(
        self, path: str, params: Mapping[str, str] | None, parse: Callable[[bytes], T]
    ) -> T:
        """GET ``api_url + path`` (``path`` already percent-encoded) and ``parse`` the body; a
        body that is not JSON is retried."""
        url = URL(self._config.api_url + path, encoded=True)
        async for attempt in self._retrying():
            with attempt:
                body = await self._authorized_get(url, params or {})
                try:
                    return parse(body)
                except ValueError as exc:
                    raise ResponseValidationError(
                        f"the body from {url} is not JSON ({len(body)} bytes)", transient=True
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def retrying(self) -> AsyncRetrying:
        """The retry policy of every request, for callers that drive :meth:`stream` themselves."""
        return self._retrying()

    @asynccontextmanager
    async def stream(
        self, path: str, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET ``api_url + path`` (``path`` already percent-encoded) and lend the open 2xx response.

        One attempt, no retries (wrap it in :meth:`retrying`): the same token, budget, 401
        refresh and error mapping as :meth:`get`, and errors while the caller reads the body
        map to ``ResponseValidationError`` (truncated) or ``APIConnectionError``. Redirects are
        followed here, and the bearer token is sent only to the API's own origin.
        """
        url = URL(self._config.api_url + path, encoded=True)
        stats = self.stats
        with self._in_flight(url):
            token = await self.tokens.token()
            resp = await self._open(url, headers or {}, token)
            if resp.status == 401 and resp.url.origin() == url.origin():
                resp.release()
                token = await self.tokens.refresh(stale=token)
                resp = await self._open(url, headers or {}, token)
                if resp.status == 401:
                    resp.release()
                    raise AuthenticationError(
                        f"the API refused a freshly issued token (HTTP 401 from {url})"
                    )
            try:
                if resp.status >= 300:
                    if resp.status == 429:
                        stats.rate_limited += 1
                    body = await resp.content.read(65_536)
                    where = str(resp.url.with_query(None))  # a signed URL's query is a secret
                    raise error_for_status(resp.status, body, resp.headers, where)
                yield resp
            finally:
                resp.release()

    async def _open(
        self, url: URL, headers: Mapping[str, str], token: str
    ) -> aiohttp.ClientResponse:
        """Send a GET and follow redirects; ``Authorization`` goes to the API origin only."""
        api_origin = url.origin()
        for _ in range(MAX_REDIRECTS):
            sent = {"Accept-Encoding": "identity", **headers}
            if url.origin() == api_origin:
                await self.limiter.acquire()
                sent.update({"Authorization": f"Bearer {token}", "Accept": ACCEPT})
            resp = await self._http.get(url, headers=sent, allow_redirects=False)
            location = resp.headers.get("Location")
            if resp.status not in _REDIRECTS or not location:
                return resp
            resp.release()
            url = resp.url.join(URL(location))
        raise APIStatusError(
            f"more than {MAX_REDIRECTS} redirects, the last to {url.with_query(None)}",
            status=resp.status,
        )

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=self._stop,
            wait=self._wait,
            before_sleep=self._before_retry,
            reraise=True,
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
            self.limiter.pause(min(pause, self._config.retry_after_max))
            return 0.0
        return delay

    def _before_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info("retrying after attempt %d: %s", state.attempt_number, exc)

    async def _authorized_get(self, url: URL, params: Mapping[str, str]) -> bytes:
        token = await self.tokens.token()
        status, body, headers = await self._send(url, params, token)
        if status == 401:  # expired or revoked early: one new token, one more try
            token = await self.tokens.refresh(stale=token)
            status, body, headers = await self._send(url, params, token)
            if status == 401:
                raise AuthenticationError(
                    f"the API refused a freshly issued token (HTTP 401 from {url})"
                )
        if status >= 300:
            if status == 429:
                self.stats.rate_limited += 1
            raise error_for_status(status, body, headers, str(url))
        self.limiter.speed_up()
        return body

    async def _send(
        self, url: URL, params: Mapping[str, str], token: str
    ) -> tuple[int, bytes, Mapping[str, str]]:
        await self.limiter.acquire()
        headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
        stats = self.stats
        began = time.monotonic()
        with self._in_flight(url):
            async with self._http.get(url, params=params, headers=headers) as resp:
                answer = resp.status, await resp.read(), resp.headers
        took = time.monotonic() - began
        stats.latency = took if not stats.latency else 0.8 * stats.latency + 0.2 * took
        return answer

    @contextmanager
    def _in_flight(self, url: URL) -> Iterator[None]:
        """Count one request while it runs; map aiohttp's failures to the library's errors."""
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            yield
        except aiohttp.ClientPayloadError as exc:
            raise ResponseValidationError(
                f"truncated body from {url}: {exc}", transient=True
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise APIConnectionError(f"request to {url} failed: {_describe(exc)}") from exc
        finally:
            stats.in_flight -= 1

    async def _post_form(self, url: str, form: dict[str, str]) -> tuple[int, Any]:
        """POST a token request; transient failures are retried, 4xx answers returned."""
        async for attempt in self._retrying():
            with attempt:
                await self.limiter.wait_out_pause()
                try:
                    async with self._http.post(url, data=form) as resp:
                        status, body = resp.status, await resp.read()
                except aiohttp.ClientPayloadError as exc:
                    raise ResponseValidationError(
                        f"truncated body from {url}", transient=True
                    ) from exc
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise APIConnectionError(
                        f"token request to {url} failed: {_describe(exc)}"
                    ) from exc
                if status >= 500 or status == 429:
                    raise error_for_status(status, body, {}, url)
                try:
                    return status, loads(body)
                except ValueError:
                    if status == 200:
                        raise ResponseValidationError(
                            f"the token endpoint's body is not JSON: {url}", transient=True
                        ) from None
                    return status, None
        raise AssertionError("unreachable")  # pragma: no cover


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
