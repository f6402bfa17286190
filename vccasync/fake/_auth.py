"""OAuth2 client-credentials checks and the server-side store of issued tokens."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from typing import Final
from urllib.parse import unquote_plus

READ_SCOPE: Final = "interaction-content:read"
DELETE_SCOPE: Final = "interaction-content:delete"
SCOPES: Final = frozenset({READ_SCOPE, DELETE_SCOPE})


class TokenStore:
    """Issued bearer tokens and when they expire (monotonic clock)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._expiry: dict[str, float] = {}
        self._scopes: dict[str, frozenset[str]] = {}

    def issue(self, scopes: Collection[str] = (READ_SCOPE,)) -> str:
        """A new random token of ``scopes``, valid for ``ttl`` seconds."""
        now = self._clock()
        if len(self._expiry) > 1000:
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}
            self._scopes = {t: s for t, s in self._scopes.items() if t in self._expiry}
        token = secrets.token_urlsafe(32)
        self._expiry[token] = now + self.ttl
        self._scopes[token] = frozenset(scopes)
        return token

    def scopes(self, token: str) -> frozenset[str]:
        """The scopes ``token`` was issued for (empty for an unknown token)."""
        return self._scopes.get(token, frozenset())

    def valid(self, token: str) -> bool:
        """Whether ``token`` was issued here and has not expired."""
        expiry = self._expiry.get(token)
        return expiry is not None and self._clock() < expiry


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from an HTTP Basic header (RFC 6749 2.3.1), if any."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if sep else None


def token_error(
    form: Mapping[str, str],
    basic: tuple[str, str] | None,
    *,
    client_id: str,
    client_secret: str,
) -> str | None:
    """The OAuth2 error code for a token request, or None when a token is due.

    Any known scope may be asked for; the token carries those the client is allowed
    (:func:`granted`), so a client without the delete scope gets a token that the delete
    endpoints answer with 403."""
    if form.get("grant_type") != "client_credentials":
        return "unsupported_grant_type"
    given = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if not (
        secrets.compare_digest(given[0].encode(), client_id.encode())
        and secrets.compare_digest(given[1].encode(), client_secret.encode())
    ):
        return "invalid_client"
    asked = frozenset(form.get("scope", "").split())
    if not asked or not asked <= SCOPES:
        return "invalid_scope"
    return None


def granted(form: Mapping[str, str], allowed: Collection[str]) -> frozenset[str]:
    """The scopes of a token request that the client is allowed."""
    return frozenset(form.get("scope", "").split()) & frozenset(allowed)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
