"""Validation of a search before any request is sent, and its query parameters (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

import attrs
from attrs import frozen

from ._errors import InvalidRequestError, InvalidTypeError
from ._instants import format_instant, parse_instant
from ._models import Direction
from ._windows import Window

__all__ = [
    "FILTERS",
    "FILTER_BY_NAME",
    "Filter",
    "Filtering",
    "SearchFilters",
    "SearchQuery",
    "check_instant",
    "check_limit",
    "make_filters",
    "make_query",
]

MAX_PREFIX = 50
MAX_LIMIT = 1000
_FILTER: Final = "vccasync.filter"  # the metadata key of a filter's declaration
_DIRECTIONS: Final = tuple(d.value for d in Direction)

Filtering = Direction | str | int | None
"""The value of a filter given by name (``direction="inbound"``); None: not set."""

FilterKind = Literal["choice", "prefix", "id"]
"""How a filter's value is checked and compared with the interaction: ``choice`` one of
``choices``, equal ignoring case; ``prefix`` a 1 to 50 character prefix, ignoring case; ``id``
a non-empty identifier (a whole number is taken as text), equal exactly."""


@frozen
class Filter:
    """One filter of a search, declared once, on its ``SearchFilters`` field: its name there
    (also the keyword of ``make_query``, the key of checkpoints and tasks), the API's query
    parameter, the CLI option and its help, and how the API compares it with ``field`` of an
    interaction (``handlingAgents[].id``: the id of any of the handling agents)."""

    name: str
    api: str
    flag: str
    help: str
    field: str
    kind: FilterKind
    choices: tuple[str, ...] = ()
    metavar: str | None = None

    def check(self, value: Any) -> str | None:
        """``value`` as the API's text (None: not set); ``InvalidRequestError`` if wrong."""
        if value is None:
            return None
        if self.kind == "choice":
            text = value.value if isinstance(value, Enum) else value
            if text not in self.choices:
                wanted = " or ".join(repr(c) for c in self.choices)
                raise InvalidRequestError(f"{self.name} must be {wanted}, got {value!r}")
            return str(text)
        if self.kind == "prefix":
            if not isinstance(value, str):
                raise InvalidRequestError(
                    f"{self.name} must be a string (phone numbers keep leading zeros)"
                )
            if not 1 <= len(value) <= MAX_PREFIX:
                raise InvalidRequestError(
                    f"{self.name} must be 1 to {MAX_PREFIX} characters, got {len(value)}"
                )
            return value
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidRequestError(f"{self.name} must be a string, got {value!r}")
        if not str(value).strip():
            raise InvalidRequestError(f"{self.name} must not be empty")
        return str(value)

    def values(self, item: Mapping[str, Any]) -> list[str]:
        """The texts of ``field`` in the API's JSON of an interaction."""
        if self.field.endswith("[].id"):
            return [str(one.get("id", "")) for one in item.get(self.field[:-5]) or ()]
        return [str(item.get(self.field) or "")]

    def matches(self, value: str, item: Mapping[str, Any]) -> bool:
        """Whether the interaction ``item`` (the API's JSON) passes this filter set to
        ``value``, as the API compares."""
        if self.kind == "id":
            return value in self.values(item)
        wanted = value.casefold()
        if self.kind == "prefix":
            return any(text.casefold().startswith(wanted) for text in self.values(item))
        return any(text.casefold() == wanted for text in self.values(item))


def _filter(
    api: str,
    flag: str,
    help: str,
    *,
    field: str,
    kind: FilterKind,
    choices: tuple[str, ...] = (),
    metavar: str | None = None,
) -> Any:
    """A ``SearchFilters`` field, with its declaration (the name is the field's)."""
    declared = Filter("", api, flag, help, field, kind, choices, metavar)
    return attrs.field(default=None, metadata={_FILTER: declared})


@frozen
class SearchFilters:
    """The filters of a search, checked (``make_filters``); ``None`` where not set.

    Each field declares its filter; :data:`FILTERS` lists them, and every other place (the
    API's parameters, the CLI options, the keys of checkpoints and tasks, which stored rows a
    sync may judge, the fake API's matching) derives from them. To add a filter, add a field.
    """

    direction: Direction | None = _filter(  # noqa: RUF009 - a declaration, not a default
        "direction", "--direction", "only inbound or outbound",
        field="direction", kind="choice", choices=_DIRECTIONS,
    )  # fmt: skip
    connect_from: str | None = _filter(
        "connectFrom", "--connect-from", "caller prefix",
        field="connectFrom", kind="prefix", metavar="PREFIX",
    )  # fmt: skip
    connect_to: str | None = _filter(
        "connectTo", "--connect-to", "callee prefix",
        field="connectTo", kind="prefix", metavar="PREFIX",
    )  # fmt: skip
    handling_agent_id: str | None = _filter(
        "handlingAgentId", "--agent-id", "handling agent id (any of them)",
        field="handlingAgents[].id", kind="id", metavar="ID",
    )  # fmt: skip

    def as_text(self) -> dict[str, str]:
        """The filters that are set, by name (``make_filters``' keywords), as the API's text:
        the one key form of checkpoints and tasks."""
        set_ = ((f, getattr(self, f.name)) for f in FILTERS)
        return {
            f.name: str(v.value if isinstance(v, Enum) else v) for f, v in set_ if v is not None
        }

    def params(self) -> dict[str, str]:
        """The filters that are set, by the API's parameter names."""
        return {FILTER_BY_NAME[name].api: text for name, text in self.as_text().items()}


FILTERS: Final = tuple(
    attrs.evolve(a.metadata[_FILTER], name=a.name) for a in attrs.fields(SearchFilters)
)
"""Every filter, in declaration order."""
FILTER_BY_NAME: Final = {f.name: f for f in FILTERS}
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


def make_filters(**values: Filtering) -> SearchFilters:
    """Check the filters of a search, given by name (``direction=``, ``connect_from=``,
    ``connect_to=``, ``handling_agent_id=``, as :data:`FILTERS` declares them; None: not set);
    raise ``InvalidRequestError`` with a clear message."""
    unknown = sorted(set(values) - set(FILTER_BY_NAME))
    if unknown:
        raise InvalidTypeError(
            f"unknown filter(s) {', '.join(unknown)} (known: {', '.join(FILTER_BY_NAME)})"
        )
    checked = {f.name: f.check(values.get(f.name)) for f in FILTERS}
    direction = checked.pop("direction")
    return SearchFilters(direction=None if direction is None else Direction(direction), **checked)


def check_limit(limit: Any) -> int:
    """``limit`` if it is a page size the API takes, else ``InvalidRequestError``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def make_query(
    start: datetime | str,
    end: datetime | str,
    *,
    limit: int = MAX_LIMIT,
    filters: SearchFilters | None = None,
    **keywords: Filtering,
) -> SearchQuery:
    """Check every argument of a search; raise ``InvalidRequestError`` with a clear message.

    The filters come either as keywords (see :func:`make_filters`) or, already checked, as
    ``filters``."""
    first, last = check_instant("start", start), check_instant("end", end)
    if last < first:
        raise InvalidRequestError(
            f"end ({format_instant(last)}) is before start ({format_instant(first)})"
        )
    given = make_filters(**keywords)
    if filters is None:
        filters = given
    elif given != NO_FILTERS:
        raise InvalidRequestError("give the filters either as keywords or as filters, not both")
    return SearchQuery(first, last, filters, check_limit(limit))
