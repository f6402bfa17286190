"""OAuth2 client credentials: one cached token for every concurrent request of a client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from attrs import frozen

from .config import ClientConfig
from .errors import AuthenticationError, ResponseValidationError

__all__ = ["Token", "TokenSource"]

PostForm = Callable[[str, dict[str, str]], Awaitable[tuple[int, Any]]]


@frozen(repr=False)
class Token:
    """A bearer token and the loop time at which it should be replaced."""

    value: str
    refresh_at: float

    def __repr__(self) -> str:
        return "Token(<redacted>)"


class TokenSource:
    """Fetches, caches and refreshes the access token; one refresh at a time.

    ``post_form`` sends the token request (through the session layer's retries) and returns
    the status and decoded JSON body.
    """

    def __init__(self, config: ClientConfig, post_form: PostForm) -> None:
        self._config = config
        self._post_form = post_form
        self._token: Token | None = None
        self._refused: AuthenticationError | None = None  # wrong credentials stay wrong
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenSource(client_id={self._config.client_id!r})"

    async def token(self) -> str:
        """A valid token, fetched once and shared; refreshed shortly before it expires."""
        current = self._token
        if current is not None and asyncio.get_running_loop().time() < current.refresh_at:
            return current.value
        return await self.refresh(current.value if current else None)

    async def refresh(self, stale: str | None) -> str:
        """Replace ``stale`` (the token a 401 came back for) unless someone already did."""
        async with self._lock:
            if self._refused is not None:
                raise AuthenticationError(str(self._refused))
            current = self._token
            now = asyncio.get_running_loop().time()
            if current is not None and current.value != stale and now < current.refresh_at:
                return current.value
            self._token = await self._fetch()
            self.refreshes += 1
            return self._token.value

    async def _fetch(self) -> Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
            "scope": self._config.scope,
        }
        started = asyncio.get_running_loop().time()
        status, body = await self._post_form(self._config.token_url, form)
        if status in (400, 401, 403):
            reason = body.get("error") if isinstance(body, dict) else None
            self._refused = AuthenticationError(
                f"the token endpoint refused client id {self._config.client_id!r}"
                f" (HTTP {status}{', ' + str(reason) if reason else ''}):"
                " check VCC_CLIENT_ID, VCC_CLIENT_SECRET and VCC_AUTH_URL"
            )
            raise self._refused
        if status != 200 or not isinstance(body, dict):
            raise AuthenticationError(f"the token endpoint answered HTTP {status}")
        value, lifetime = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(value, str) or not value or not isinstance(lifetime, int | float):
            raise ResponseValidationError("the token endpoint's answer has no usable access_token")
        margin = min(self._config.token_refresh_margin, lifetime * 0.1)
        return Token(value, started + lifetime - margin)
