"""Validation of a search before any request is sent, and its query parameters (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from attrs import frozen

from .errors import InvalidRequestError
from .instants import format_instant, parse_instant
from .models import Direction
from .windows import Window

__all__ = [
    "SearchFilters",
    "SearchQuery",
    "check_instant",
    "check_limit",
    "make_filters",
    "make_query",
]

MAX_PREFIX = 50
MAX_LIMIT = 1000


@frozen
class SearchFilters:
    """The filters of a search, checked (``make_filters``); ``None`` where not set."""

    direction: Direction | None = None
    connect_from: str | None = None
    connect_to: str | None = None
    handling_agent_id: str | None = None

    def params(self) -> dict[str, str]:
        """The filters that are set, by the API's parameter names."""
        named = {
            "handlingAgentId": self.handling_agent_id,
            "connectFrom": self.connect_from,
            "connectTo": self.connect_to,
            "direction": self.direction.value if self.direction else None,
        }
        return {k: v for k, v in named.items() if v is not None}

    def as_text(self) -> dict[str, str]:
        """The filters that are set, by ``make_filters``' argument names, as text."""
        named = {
            "direction": self.direction.value if self.direction else None,
            "connect_from": self.connect_from,
            "connect_to": self.connect_to,
            "handling_agent_id": self.handling_agent_id,
        }
        return {k: v for k, v in named.items() if v is not None}


NO_FILTERS: Final = SearchFilters()


@frozen
class SearchQuery:
    """A validated search: the range (both ends owned), its filters and its page size."""

    start: datetime
    end: datetime
    filters: SearchFilters = NO_FILTERS
    limit: int = MAX_LIMIT

    def covers(self, moment: datetime) -> bool:
        """Whether an interaction at ``moment`` is inside the requested range."""
        return self.start <= moment <= self.end

    def params(self, window: Window, token: str | None = None) -> dict[str, str]:
        """The query string of one request of ``window``."""
        params = {"start": format_instant(window.start), "end": format_instant(window.query_end)}
        params.update(self.filters.params())
        if token is not None:
            params["continuationToken"] = token
        if self.limit != MAX_LIMIT:
            params["limit"] = str(self.limit)
        return params


def check_instant(name: str, value: Any) -> datetime:
    """``value`` (a datetime or ISO 8601 text) as an instant, else ``InvalidRequestError``."""
    if isinstance(value, datetime | str):
        try:
            return parse_instant(value)
        except ValueError:
            pass
    raise InvalidRequestError(f"{name} must be an ISO 8601 date-time, got {value!r}")


def _prefix(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string (phone numbers keep leading zeros)")
    if not 1 <= len(value) <= MAX_PREFIX:
        raise InvalidRequestError(f"{name} must be 1 to {MAX_PREFIX} characters, got {len(value)}")
    return value


def make_filters(
    *,
    direction: Direction | str | None = None,
    connect_from: str | None = None,
    connect_to: str | None = None,
    handling_agent_id: str | int | None = None,
) -> SearchFilters:
    """Check the filters of a search; raise ``InvalidRequestError`` with a clear message."""
    if direction is not None:
        try:
            direction = Direction(direction)
        except ValueError:
            raise InvalidRequestError(
                f"direction must be 'inbound' or 'outbound', got {direction!r}"
            ) from None
    agent = None if handling_agent_id is None else str(handling_agent_id)
    if agent is not None and not agent.strip():
        raise InvalidRequestError("handling_agent_id must not be empty")
    return SearchFilters(
        direction,
        _prefix("connect_from", connect_from),
        _prefix("connect_to", connect_to),
        agent,
    )


def check_limit(limit: Any) -> int:
    """``limit`` if it is a page size the API takes, else ``InvalidRequestError``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def make_query(
    start: datetime | str,
    end: datetime | str,
    *,
    direction: Direction | str | None = None,
    connect_from: str | None = None,
    connect_to: str | None = None,
    handling_agent_id: str | int | None = None,
    limit: int = MAX_LIMIT,
    filters: SearchFilters | None = None,
) -> SearchQuery:
    """Check every argument of a search; raise ``InvalidRequestError`` with a clear message.

    The filters come either as keywords or, already checked, as ``filters``."""
    first, last = check_instant("start", start), check_instant("end", end)
    if last < first:
        raise InvalidRequestError(
            f"end ({format_instant(last)}) is before start ({format_instant(first)})"
        )
    keywords = make_filters(
        direction=direction,
        connect_from=connect_from,
        connect_to=connect_to,
        handling_agent_id=handling_agent_id,
    )
    if filters is None:
        filters = keywords
    elif keywords != NO_FILTERS:
        raise InvalidRequestError("give the filters either as keywords or as filters, not both")
    return SearchQuery(first, last, filters, check_limit(limit))
