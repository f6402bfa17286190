"""What one sync is about: its filters, the key a store keeps its progress under, the query
of a pass, and which stored interactions a pass may judge removed. Pure, no I/O."""

from __future__ import annotations

import json
from typing import Any

from .._instants import floor_instant, format_instant, parse_instant
from .._jsonio import loads
from .._query import FILTER_BY_NAME, SearchFilters, SearchQuery
from ._diff import Span

__all__ = ["floor_span", "in_scope", "pass_query", "scope_key", "span_from_text", "span_to_text"]


def pass_query(span: Span, filters: SearchFilters, limit: int) -> SearchQuery:
    """The search of a pass over ``span`` with the sync's ``filters`` and page size."""
    return SearchQuery(span.start, span.end, filters, limit)


def scope_key(filters: SearchFilters) -> str:
    """The name a store keeps a sync's coverage under: its filters as sorted JSON (the page
    size is left out: it changes how a pass pages, not what it covers)."""
    return json.dumps(filters.as_text(), sort_keys=True, separators=(",", ":"))


def in_scope(data: str | bytes, key: str) -> bool:
    """Whether the stored interaction ``data`` (its API JSON) matches the filters of ``key`` as
    the search applies them (``Filter.matches``). Without filters everything matches
    (``data`` is not even read)."""
    filters: dict[str, str] = json.loads(key)
    if not filters:
        return True
    item: dict[str, Any] = loads(data)
    return all(FILTER_BY_NAME[name].matches(value, item) for name, value in filters.items())


def span_to_text(span: Span) -> tuple[str, str]:
    """A span as two instants of text (the API's resolution)."""
    return format_instant(span.start), format_instant(span.end)


def span_from_text(start: str, end: str) -> Span:
    """The inverse of :func:`span_to_text`."""
    return Span(parse_instant(start), parse_instant(end))


def floor_span(span: Span) -> Span:
    """``span`` at the API's resolution (what a store can keep exactly)."""
    return Span(floor_instant(span.start), floor_instant(span.end))
