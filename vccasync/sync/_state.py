"""Where a sync remembers what it has seen: the ``SyncState`` protocol and its in-memory form.

The engine asks the state, pass by pass: how far it is complete (:meth:`SyncState.coverage`),
to open a pass (a store may hand back an unfinished pass to resume), what it knows of the
guids on a page, to record a page once its changes were handed on, which known interactions
of the span a complete pass did not see, and to close the pass. A store implements the same
methods over its rows (fingerprint and JSON columns, ``removed_at``, a pass checkpoint), in
one transaction per call, so that a pass killed half-way resumes and never marks anything
removed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from attrs import frozen

from .._models import Content, Interaction
from .._windows import Page, WindowPlan
from ._diff import ChangeKind, Known, Span, removed

__all__ = ["MemoryState", "Observed", "SyncState"]


@frozen
class Observed:
    """One interaction a pass returned: its fingerprint, canonical JSON, what changed
    (``kind`` None: unchanged) and the pieces the change brings (new, or another version than
    the stored one: what a store with a content queue queues)."""

    interaction: Interaction
    fingerprint: bytes
    data: bytes
    kind: ChangeKind | None
    pieces: tuple[Content, ...] = ()


class SyncState(Protocol):
    """What the sync engine needs from the place that remembers (memory, SQLite, PostgreSQL)."""

    async def coverage(self) -> Span | None:
        """The span the state is complete over (None: never synced)."""

    async def begin(self, span: Span) -> tuple[Span, WindowPlan | None]:
        """Open a pass over ``span``; return the span and plan to run (an unfinished pass of
        the same query may be resumed instead: its span and the windows still to run)."""

    async def known(self, guids: Collection[str]) -> Mapping[str, Known]:
        """What is known of these guids (removed ones included, flagged)."""

    async def record(self, page: Page, observed: Sequence[Observed]) -> None:
        """The pass got ``page``: remember new and changed versions and that each guid was
        seen in this pass; a store saves the page's checkpoint in the same transaction."""

    async def unseen(self, span: Span) -> list[Known]:
        """Known interactions starting inside ``span``, not removed, that this pass did not
        see (called only after a complete pass)."""

    async def finish(
        self, span: Span, gone: Sequence[str], keep_from: datetime, left: Sequence[Observed] = ()
    ) -> None:
        """Close a complete pass: mark ``gone`` removed, write the current versions of ``left``
        (rows that left a filtered sync's filters: present, never marked removed), extend the
        coverage to ``span``; what starts before ``keep_from`` will not be judged again
        (memory may forget it)."""


class MemoryState:
    """A ``SyncState`` in memory, bounded by the lookback span.

    It keeps one :class:`Known` per interaction starting in ``[keep_from, now]`` (``keep_from``
    is where the next pass starts: the end of the last complete pass minus the lookback):
    guid, start, a 16-byte fingerprint and the canonical JSON of the last version (about the
    size of the interaction's JSON, ~0.5-1 KB), plus the guids seen by the pass under way.
    Removed interactions are forgotten once reported; one that comes back is "new" again.
    """

    def __init__(self) -> None:
        self._records: dict[str, Known] = {}
        self._coverage: Span | None = None
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._records)

    async def coverage(self) -> Span | None:
        return self._coverage

    async def begin(self, span: Span) -> tuple[Span, WindowPlan | None]:
        self._seen = set()
        return span, None

    async def known(self, guids: Collection[str]) -> Mapping[str, Known]:
        records = self._records
        return {guid: records[guid] for guid in guids if guid in records}

    async def record(self, page: Page, observed: Sequence[Observed]) -> None:
        for seen in observed:
            item = seen.interaction
            self._seen.add(item.guid)
            if seen.kind is not None:
                self._records[item.guid] = Known(item.guid, item.start, seen.fingerprint, seen.data)

    async def unseen(self, span: Span) -> list[Known]:
        return removed(self._records.values(), span, self._seen)

    async def finish(
        self, span: Span, gone: Sequence[str], keep_from: datetime, left: Sequence[Observed] = ()
    ) -> None:
        for guid in [*gone, *(seen.interaction.guid for seen in left)]:
            self._records.pop(guid, None)  # out of this sync's sight: forgotten
        old = self._coverage
        self._coverage = span if old is None else Span(min(old.start, span.start), span.end)
        self._records = {g: k for g, k in self._records.items() if k.start >= keep_from}
        self._seen = set()
