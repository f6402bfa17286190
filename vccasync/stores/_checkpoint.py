"""Resumable backfill state (pure, no I/O): which windows are pending and from which token.

A checkpoint follows pages generically: after a page, its window resumes from the page's
``next_token``, or is finished when the page is its last; every window the page ``spawned``
becomes pending from its start. It also keeps the ``repair`` of every window split on the
strength of the server's order, until a page breaks the order (the repairs are spawned,
pending like any window) and each repair window ends: a search resumed from it re-covers
what a window split before the interruption still owns. Sinks store the checkpoint together
with the rows it covers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlencode

from attrs import define, field

from .._errors import InvalidRequestError
from .._instants import format_instant
from .._query import FILTERS, SearchQuery
from .._windows import Page, Repair, ResumePlan, Window, split

__all__ = [
    "FORMAT",
    "Checkpoint",
    "checkpoint_name",
    "legacy_identity",
    "query_identity",
]

FORMAT = 2  # version of the stored form (1: before repairs; still read)


def query_identity(query: SearchQuery) -> dict[str, str]:
    """What makes two backfills the same: the range, the filters (by name, the one key form
    of every checkpoint, syncs' and tasks' too) and the page size."""
    return {
        "start": format_instant(query.start),
        "end": format_instant(query.end),
        **query.filters.as_text(),
        "limit": str(query.limit),
    }


def checkpoint_name(query: SearchQuery) -> str:
    """The name under which a shared store keeps the checkpoint of ``query``."""
    return "interactions?" + urlencode(query_identity(query))


def legacy_identity(query: SearchQuery) -> dict[str, str]:
    """:func:`query_identity` as older stores kept it: the filters by the API's parameter
    names (``handlingAgentId``); ``PostgresQuerySink`` takes such a checkpoint over once."""
    return {
        "start": format_instant(query.start),
        "end": format_instant(query.end),
        **query.filters.params(),
        "limit": str(query.limit),
    }


def _by_name(identity: Mapping[str, str]) -> dict[str, str]:
    """A stored identity with its filters by name (older stores keyed them by the API's
    parameter names)."""
    return {_NAME_OF_PARAM.get(k, k): v for k, v in identity.items()}


_NAME_OF_PARAM: Final = {f.api: f.name for f in FILTERS if f.api != f.name}


@define
class Checkpoint:
    """The windows still to fetch of one query, each with the token to resume from.

    ``written`` counts the interactions written so far; ``windows_total`` grows when a page
    spawns windows, so ``windows_done`` stays meaningful for progress. ``repairs`` holds, by
    the repair window's key, the guids each split window gave at its latest instant;
    ``order_broken`` tells that a page broke the order (its repairs were spawned).
    """

    query: dict[str, str]
    pending: dict[str, str | None] = field(factory=dict)
    windows_total: int = 0
    written: int = 0
    repairs: dict[str, list[str]] = field(factory=dict)
    order_broken: bool = False

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

    def advance(self, page: Page) -> bool:
        """Record that ``page`` has been written; whether ``resume_state`` changed."""
        key = page.window.key
        if key not in self.pending:
            raise InvalidRequestError(f"page of window {key} which is not pending")
        changed = False
        if page.last:
            del self.pending[key]
            if self.order_broken:  # a repair window ends: re-covered
                changed = self.repairs.pop(key, None) is not None
        else:
            self.pending[key] = page.next_token
        for window in page.spawned:
            if window.after is not None and not self.order_broken:  # a repair: the order broke
                self.order_broken = changed = True
            if window.key not in self.pending:
                self.pending[window.key] = None
                self.windows_total += 1
        repair = page.repair
        if repair is not None and (not self.order_broken or repair.window.key in self.pending):
            # to spawn should the order break, or (it broke before this page came) the
            # guids its repair window drops; a repair window already ended needs nothing
            self.repairs[repair.window.key] = sorted(repair.seen)
            changed = True
        self.written += len(page.items)
        return changed

    @contextmanager
    def advancing(self, page: Page) -> Iterator[bool]:
        """:meth:`advance` for the block that stores the page (yields whether ``resume_state``
        changed); a block that fails or is cancelled puts the checkpoint back as it was, so
        it never counts what the store does not hold."""
        before = (
            dict(self.pending), self.windows_total, self.written, dict(self.repairs),
            self.order_broken,
        )  # fmt: skip
        changed = self.advance(page)
        try:
            yield changed
        except BaseException:
            (
                self.pending, self.windows_total, self.written, self.repairs, self.order_broken
            ) = before  # fmt: skip
            raise

    def plan(self) -> ResumePlan:
        """The pending windows in chronological order, with the repairs, for
        ``vcc.interactions(plan=...)``."""
        windows = sorted((Window.from_key(key), token) for key, token in self.pending.items())
        repairs = (
            Repair(Window.from_key(key), frozenset(seen)) for key, seen in self.repairs.items()
        )
        return ResumePlan(
            tuple(windows), tuple(sorted(repairs, key=lambda r: r.window)), self.order_broken
        )

    def resume_state(self) -> dict[str, Any]:
        """What the pending windows alone do not say: the repairs and whether the order
        broke (a store that keeps windows as rows keeps this beside them)."""
        repairs = {key: list(seen) for key, seen in self.repairs.items()}
        return {"repairs": repairs, "order_broken": self.order_broken}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a ``resume_state`` (``{}``: none was kept); ``InvalidRequestError`` if
        it is damaged."""
        try:
            repairs = {str(k): [str(g) for g in v] for k, v in state.get("repairs", {}).items()}
            for key in repairs:
                Window.from_key(key)
            broken = state.get("order_broken", False)
            if not isinstance(broken, bool):
                raise ValueError(f"order_broken {broken!r}")
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidRequestError(f"the checkpoint is not readable ({exc})") from None
        self.repairs, self.order_broken = repairs, broken

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "format": FORMAT,
            "query": self.query,
            "pending": self.pending,
            "windows_total": self.windows_total,
            "written": self.written,
            "repairs": self.repairs,
            "order_broken": self.order_broken,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        """The inverse of ``to_json``; a foreign or damaged form raises ``InvalidRequestError``."""
        try:
            if data["format"] not in (1, FORMAT):
                raise ValueError(f"format {data['format']!r}")
            query = _by_name({str(k): str(v) for k, v in data["query"].items()})
            pending = {str(k): None if v is None else str(v) for k, v in data["pending"].items()}
            for key in pending:
                Window.from_key(key)
            total, written = int(data["windows_total"]), int(data["written"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidRequestError(f"the checkpoint is not readable ({exc})") from None
        checkpoint = cls(query, pending, total, written)
        checkpoint.restore(data)
        return checkpoint
