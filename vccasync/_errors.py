"""The one exception hierarchy of vccasync: every failure leaves the library as a ``VccError``."""

from __future__ import annotations

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AuthenticationError",
    "InvalidRequestError",
    "InvalidTypeError",
    "LeaseLostError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseValidationError",
    "VccError",
]


class VccError(Exception):
    """Base class of every error raised by vccasync."""


class InvalidRequestError(VccError, ValueError):
    """The caller's input is invalid; raised before any request is sent."""


class InvalidTypeError(InvalidRequestError, TypeError):
    """An argument or option has the wrong type (``limit="10"``); raised before any request."""


class LeaseLostError(VccError):
    """A store's writer lease is gone (its connection dropped, or another writer took it):
    the run stops before it writes or marks anything more."""


class AuthenticationError(VccError):
    """The token endpoint refused the credentials, or the API refused a fresh token."""


class APIConnectionError(VccError):
    """The API could not be reached, the connection dropped, or a request timed out."""


class ResponseValidationError(VccError):
    """The API answered with a body that is truncated, not JSON, or not the documented shape.

    ``transient`` errors (a truncated or undecodable body) are retried; a body that decodes
    but has the wrong shape is not.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class APIStatusError(VccError):
    """The API answered with an unexpected HTTP status."""

    def __init__(self, message: str, *, status: int, url: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.detail = detail  # the body's "message" (or OAuth "error"), if any


class RateLimitedError(APIStatusError):
    """The API answered 429 (too many requests) and kept doing so after every retry."""

    def __init__(self, message: str, *, url: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, status=429, url=url)
        self.retry_after = retry_after


class NotFoundError(APIStatusError):
    """The interaction or content does not exist (or has no content)."""


class PermissionDeniedError(AuthenticationError, APIStatusError):
    """The API answered 403: the token lacks the scope (e.g. ``interaction-content:delete``)."""
