"""OAuth2 client credentials: one cached token per scope, shared by every request of a client.

Reads use the configured read scope; a token of the delete scope is requested only when a
deletion is made. Each scope has its own token, its own refresh lock (one refresh at a time)
and remembers a refusal (wrong credentials stay wrong; a scope the client may not have stays
refused; an auth URL with no token endpoint, a 404, stays wrong).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from attrs import define, frozen

from .._config import ClientConfig
from .._errors import APIStatusError, AuthenticationError, ResponseValidationError

__all__ = ["PostForm", "Token", "TokenSource"]

PostForm = Callable[[str, dict[str, str]], Awaitable[Any]]
"""Sends a token request (form-encoded) and returns the decoded JSON of a 2xx answer; raises
``APIStatusError`` for any other answer."""


@frozen(repr=False)
class Token:
    """A bearer token, the loop time its request was sent and the time to replace it."""

    value: str
    refresh_at: float
    issued_at: float = 0.0

    def __repr__(self) -> str:
        return "Token(<redacted>)"


@define
class _Slot:
    """The state of one scope: its token, its refresh lock and a remembered refusal."""

    lock: asyncio.Lock
    token: Token | None = None
    refused: AuthenticationError | None = None


class TokenSource:
    """Fetches, caches and refreshes access tokens, one per scope; one refresh at a time.

    ``post_form`` sends the token request through the session layer's request core.
    """

    def __init__(self, config: ClientConfig, post_form: PostForm) -> None:
        self._config = config
        self._post_form = post_form
        self._slots: dict[str, _Slot] = {}
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenSource(client_id={self._config.client_id!r})"

    @property
    def scopes(self) -> list[str]:
        """The scopes a token was requested for so far."""
        return [s for s, slot in self._slots.items() if slot.token or slot.refused]

    def _slot(self, scope: str | None) -> tuple[str, _Slot]:
        name = scope or self._config.scope
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = _Slot(asyncio.Lock())
        return name, slot

    async def token(self, scope: str | None = None) -> str:
        """A valid token of ``scope`` (default: the read scope), fetched once and shared."""
        return (await self.current(scope)).value

    async def current(self, scope: str | None = None) -> Token:
        """Like :meth:`token`, with the time its request was sent."""
        _, slot = self._slot(scope)
        held = slot.token
        if held is not None and asyncio.get_running_loop().time() < held.refresh_at:
            return held
        return await self.refresh(held.value if held else None, scope)

    async def refresh(self, stale: str | None, scope: str | None = None) -> Token:
        """Replace ``stale`` (the token a 401 came back for) unless someone already did."""
        name, slot = self._slot(scope)
        async with slot.lock:
            if slot.refused is not None:
                raise AuthenticationError(str(slot.refused))
            held = slot.token
            now = asyncio.get_running_loop().time()
            if held is not None and held.value != stale and now < held.refresh_at:
                return held
            try:
                slot.token = await self._fetch(name)
            except AuthenticationError as exc:  # a refusal: final, not retried by any waiter
                slot.refused = exc
                raise
            self.refreshes += 1
            return slot.token

    async def _fetch(self, scope: str) -> Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
            "scope": scope,
        }
        started = asyncio.get_running_loop().time()
        try:
            body = await self._post_form(self._config.token_url, form)
        except APIStatusError as exc:
            if exc.status == 404:  # no token endpoint there: the auth URL is wrong
                raise AuthenticationError(
                    f"no token endpoint at {self._config.token_url} (HTTP 404): check --auth-url"
                    " or VCC_AUTH_URL, which take the auth base (like"
                    " https://emea.cc.vonage.com/Auth) or its token endpoint (…/connect/token)"
                ) from None
            if exc.status not in (400, 401, 403):
                raise  # transient failures that outlived the retries are not remembered
            reason = f", {exc.detail}" if exc.detail else ""
            raise AuthenticationError(
                f"the token endpoint refused client id {self._config.client_id!r} for scope"
                f" {scope!r} (HTTP {exc.status}{reason}):"
                " check VCC_CLIENT_ID, VCC_CLIENT_SECRET, VCC_AUTH_URL and the client's scopes"
            ) from None
        if not isinstance(body, dict):
            raise ResponseValidationError("the token endpoint's answer is not a JSON object")
        value, lifetime = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(value, str) or not value or not isinstance(lifetime, int | float):
            raise ResponseValidationError("the token endpoint's answer has no usable access_token")
        margin = min(self._config.token_refresh_margin, lifetime * 0.1)
        return Token(value, started + lifetime - margin, started)
