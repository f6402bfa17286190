"""Resumable backfill state (pure, no I/O): which windows are pending and from which token.

A checkpoint follows pages generically: after a page, its window resumes from the page's
``next_token``, or is finished when the page is its last; every window the page ``spawned``
becomes pending from its start. Sinks store the checkpoint together with the rows it covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from attrs import define, field

from ..converter import format_instant
from ..errors import InvalidRequestError
from ..query import SearchQuery
from ..windows import Page, Window, split

__all__ = ["FORMAT", "Checkpoint", "checkpoint_name", "query_identity"]

FORMAT = 1  # version of the stored form


def query_identity(query: SearchQuery) -> dict[str, str]:
    """What makes two backfills the same: the range, the filters and the page size."""
    return {
        "start": format_instant(query.start),
        "end": format_instant(query.end),
        **query.filters.params(),
        "limit": str(query.limit),
    }


def checkpoint_name(query: SearchQuery) -> str:
    """The name under which a shared store keeps the checkpoint of ``query``."""
    return "interactions?" + urlencode(query_identity(query))


@define
class Checkpoint:
    """The windows still to fetch of one query, each with the token to resume from.

    ``written`` counts the interactions written so far; ``windows_total`` grows when a page
    spawns windows, so ``windows_done`` stays meaningful for progress.
    """

    query: dict[str, str]
    pending: dict[str, str | None] = field(factory=dict)
    windows_total: int = 0
    written: int = 0

    @classmethod
    def start(cls, query: SearchQuery) -> Checkpoint:
        """A fresh checkpoint: every window of the query pending from its first page."""
        windows = split(query.start, query.end)
        return cls(query_identity(query), {w.key: None for w in windows}, len(windows))

    @property
    def done(self) -> bool:
        """Whether every window has been fetched and written."""
        return not self.pending

    @property
    def windows_done(self) -> int:
        """Windows finished so far."""
        return self.windows_total - len(self.pending)

    def matches(self, query: SearchQuery) -> bool:
        """Whether this checkpoint belongs to ``query``."""
        return self.query == query_identity(query)

    def advance(self, page: Page) -> None:
        """Record that ``page`` has been written."""
        key = page.window.key
        if key not in self.pending:
            raise InvalidRequestError(f"page of window {key} which is not pending")
        if page.last:
            del self.pending[key]
        else:
            self.pending[key] = page.next_token
        for window in page.spawned:
            if window.key not in self.pending:
                self.pending[window.key] = None
                self.windows_total += 1
        self.written += len(page.items)

    def plan(self) -> list[tuple[Window, str | None]]:
        """The pending windows in chronological order, for ``vcc.interactions(plan=...)``."""
        windows = sorted((Window.from_key(key), token) for key, token in self.pending.items())
        return [(window, token) for window, token in windows]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "format": FORMAT,
            "query": self.query,
            "pending": self.pending,
            "windows_total": self.windows_total,
            "written": self.written,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        """The inverse of ``to_json``; a foreign or damaged form raises ``InvalidRequestError``."""
        try:
            if data["format"] != FORMAT:
                raise ValueError(f"format {data['format']!r}")
            query = {str(k): str(v) for k, v in data["query"].items()}
            pending = {str(k): None if v is None else str(v) for k, v in data["pending"].items()}
            for key in pending:
                Window.from_key(key)
            return cls(query, pending, int(data["windows_total"]), int(data["written"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidRequestError(f"the checkpoint is not readable ({exc})") from None
