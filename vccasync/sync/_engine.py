"""The sync engine: passes over ``[last complete end - lookback, now]`` through the search.

Each pass runs the search (``VccClient.search``: the same concurrent, ordered, resumable
machinery as a backfill) over its span, compares every interaction with what the
:class:`~vccasync.sync._state.SyncState` knows, and yields :class:`Change` objects: "new" and
"changed" as pages arrive, then, only once the span was scanned completely, "removed" for
known interactions of the span the API no longer returns. A pass cut short (failure,
cancellation) marks nothing removed and does not advance the coverage; the next pass covers
its span again and reports only what was not reported yet. Changes are recorded in the state
after they are handed on, so a crash can repeat a change but never lose one. A filtered pass
asks the API about each stored row of its filters it did not see: only those the API no
longer has are removed; the others left the filters (another agent, another direction) and
are kept at their current version, unreported (:attr:`PassResult.left`). A coverage ending
after now (a clock ahead, or stepped back) is taken as ending now, with one warning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, cast, overload

import attrs
from attrs import frozen

from .._converter import structure_interaction
from .._counts import count
from .._errors import (
    AuthenticationError,
    InvalidRequestError,
    LeaseLostError,
    NotFoundError,
    VccError,
)
from .._instants import format_instant
from .._jsonio import loads
from .._models import Interaction
from .._query import NO_FILTERS, SearchFilters, SearchQuery, check_instant, check_limit
from .._tracing import Tracing, traced_pass
from .._windows import Page, Window, WindowPlan
from ._diff import Change, ChangeKind, Known, Span, ahead, classify, plan_span
from ._durations import parse_duration
from ._fingerprint import changed_pieces, snapshot
from ._scope import pass_query
from ._state import MemoryState, Observed, SyncState

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_LOOKBACK",
    "ChangeFeed",
    "Duration",
    "PassObserver",
    "PassProgress",
    "PassResult",
    "SearchParts",
    "Searcher",
    "SyncEngine",
]

log = logging.getLogger("vccasync.sync")

Clock = Callable[[], datetime]
Duration = timedelta | str
"""A ``timedelta`` or text such as ``90m``, ``48h``, ``2d``, ``PT90M``."""
ChangeFeed = AsyncGenerator[Change, None]
DEFAULT_LOOKBACK: Final = timedelta(hours=24)
DEFAULT_EVERY: Final = timedelta(minutes=5)
Sleep = Callable[[float], Awaitable[Any]]


@frozen
class PassResult:
    """What one complete pass did; ``complete_up_to`` is the end of its span."""

    span: Span
    new: int
    changed: int
    removed: int
    unchanged: int
    requests: int
    rate_limited: int
    seconds: float
    left: int = 0
    """Rows of the span a filtered pass did not see that the API still has (they left the
    filters): kept current in the store, not marked removed, not reported as changes."""

    @property
    def complete_up_to(self) -> datetime:
        """The instant the state is complete up to after this pass."""
        return self.span.end

    def summary(self) -> str:
        """One line: counts, the instant complete up to, requests and seconds."""
        left = f", {self.left:,} left the filters" if self.left else ""
        return (
            f"{self.new:,} new, {self.changed:,} changed, {self.removed:,} removed{left},"
            f" {self.unchanged:,} unchanged; complete up to {format_instant(self.complete_up_to)};"
            f" {count(self.requests, 'request')}, {self.seconds:.1f}s"
        )


class PassObserver(Protocol):
    """Told about every pass (the Prometheus metrics implement it)."""

    def pass_done(self, result: PassResult, now: datetime) -> None:
        """A pass completed at ``now``."""

    def pass_stopped(self, requests: int, rate_limited: int) -> None:
        """A pass stopped before its end (failure, cancellation, consumer gone) after so
        many requests."""


class PassProgress(Protocol):
    """Told as each pass goes, page by page (the command's progress display implements it;
    how each pass ends, a :class:`PassObserver` is told)."""

    def pass_began(self, span: Span, windows: int) -> None:
        """A pass over ``span`` starts (or resumes) with so many windows to fetch."""

    def page_recorded(self, page: Page, observed: Sequence[Observed]) -> None:
        """The pass recorded ``page`` (its windows: ``page.last``, ``page.spawned``)."""


class Pages(Protocol):
    """A running search, as the engine reads it (``InteractionSearch``)."""

    @property
    def windows(self) -> Sequence[Window]: ...

    def pages(self) -> AsyncIterator[Page]: ...


class Counts(Protocol):
    """Request counters (``SessionStats``)."""

    requests: int
    rate_limited: int


class Searcher(Protocol):
    """What a sync calls (``VccClient`` has it): the search of a query, resumed from ``plan``,
    and the client's request counters."""

    @property
    def stats(self) -> Counts: ...

    def search(self, query: SearchQuery, *, plan: WindowPlan | None = None) -> Pages: ...

    def interaction(self, guid: str) -> Awaitable[Interaction]: ...


class Search(Protocol):
    """The search of a query, resumed from ``plan`` (e.g. a client's bound ``search``)."""

    def __call__(self, query: SearchQuery, *, plan: WindowPlan | None = None) -> Pages: ...


class Fetch(Protocol):
    """One interaction by guid (e.g. a client's bound ``interaction``)."""

    def __call__(self, guid: str) -> Awaitable[Interaction]: ...


@frozen
class SearchParts:
    """A :class:`Searcher` of narrow parts: ``search``, ``interaction``, ``counts`` (the
    request counters, read when a pass starts) and the ``tracing`` its passes are traced
    with; ``VccClient.changes`` hands the engine these, not itself."""

    search: Search
    interaction: Fetch
    counts: Callable[[], Counts]
    tracing: Tracing | None = None

    @property
    def stats(self) -> Counts:
        """The request counters now."""
        return self.counts()


class SyncEngine:
    """Passes of one sync (its filters, where it starts) through one searcher and one state.

    ``filters`` are a checked :class:`~vccasync._query.SearchFilters` (``make_filters``);
    ``since`` is where the first pass starts (needed unless the state has a coverage);
    ``lookback`` how far before the last complete end each pass starts again (default
    24 h); ``limit`` the page size; ``now`` the clock (aware datetimes, default the UTC
    wall clock); ``sleep`` how to wait between passes; ``should_stop``, asked after each
    page is recorded and before each pass, ends the feed there (a pass stopped so is left
    unfinished, to be resumed by the next; ``stopped`` tells it happened); ``observer`` is
    told how each pass ends, ``progress`` how it goes. Every argument is checked here, before
    any request.
    """

    def __init__(
        self,
        client: Searcher,
        state: SyncState | None = None,
        *,
        filters: SearchFilters = NO_FILTERS,
        since: datetime | str | None = None,
        lookback: Duration = DEFAULT_LOOKBACK,
        limit: int = 1000,
        now: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        observer: PassObserver | None = None,
        should_stop: Callable[[], bool] | None = None,
        progress: PassProgress | None = None,
    ) -> None:
        self.lookback = parse_duration(lookback, name="lookback")
        if not isinstance(filters, SearchFilters):
            raise InvalidRequestError(
                f"filters must be SearchFilters (make_filters), got {filters!r}"
            )
        self.filters = filters
        self.limit = check_limit(limit)
        self.since = None if since is None else check_instant("since", since)
        self.client = client
        self.state: SyncState = state if state is not None else MemoryState()
        self._now = now or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self.observer = observer
        self.progress = progress
        self._should_stop = should_stop or (lambda: False)
        self.last: PassResult | None = None
        self.stopped = False

    @traced_pass
    async def run_pass(self) -> AsyncGenerator[Change, None]:
        """One pass: its changes; afterwards ``self.last`` holds its :class:`PassResult`."""
        stats = self.client.stats
        self.stopped = False
        began, requests, limited = time.monotonic(), stats.requests, stats.rate_limited
        try:
            coverage = await self.state.coverage()
            now = self._now()
            if coverage is not None and ahead(coverage, now):
                log.warning(
                    "the store is complete up to %s, after now (%s): the clock ran ahead or"
                    " stepped back; this pass rescans the lookback before now",
                    format_instant(coverage.end),
                    format_instant(now),
                )
            planned = plan_span(coverage, since=self.since, lookback=self.lookback, now=now)
            span, plan = await self.state.begin(planned)
            counts: Counter[ChangeKind | None] = Counter()
            search = self.client.search(pass_query(span, self.filters, self.limit), plan=plan)
            if self.progress is not None:
                self.progress.pass_began(span, len(search.windows))
            async with aclosing(cast(AsyncGenerator[Page, None], search.pages())) as pages:
                async for page in pages:
                    known = await self.state.known([i.guid for i in page.items])
                    observed = [_observe(item, known.get(item.guid)) for item in page.items]
                    for at, seen in enumerate(observed):
                        counts[seen.kind] += 1
                        if seen.kind is not None:
                            previous = known.get(seen.interaction.guid)
                            change = Change(
                                seen.kind,
                                seen.interaction,
                                _decode(previous) if seen.kind == "changed" else None,
                            )
                            pieces = changed_pieces(change.interaction, change.previous)
                            observed[at] = attrs.evolve(seen, pieces=pieces)
                            yield change
                    await self.state.record(page, observed)
                    if self.progress is not None:
                        self.progress.page_recorded(page, observed)
                    if self._should_stop():
                        self.stopped = True
                        break
            if self.stopped:
                self.last = None
                if self.observer is not None:
                    self.observer.pass_stopped(
                        stats.requests - requests, stats.rate_limited - limited
                    )
                return
            gone = await self.state.unseen(span)
            left: list[Observed] = []
            if gone and self.filters != NO_FILTERS:
                gone, left = await self._still_there(gone)
            for known_one in gone:
                counts["removed"] += 1
                yield Change("removed", _decode(known_one))
            start = span.start if coverage is None else min(coverage.start, span.start)
            keep_from = max(start, span.end - self.lookback)
            await self.state.finish(span, [k.guid for k in gone], keep_from, left)
        except BaseException:
            if self.observer is not None:
                self.observer.pass_stopped(stats.requests - requests, stats.rate_limited - limited)
            raise
        self.last = PassResult(
            span=span,
            new=counts["new"],
            changed=counts["changed"],
            removed=counts["removed"],
            unchanged=counts[None],
            requests=stats.requests - requests,
            rate_limited=stats.rate_limited - limited,
            seconds=time.monotonic() - began,
            left=len(left),
        )
        if self.observer is not None:
            self.observer.pass_done(self.last, self._now())

    async def _still_there(self, unseen: list[Known]) -> tuple[list[Known], list[Observed]]:
        """Split what a filtered pass did not see: rows the API no longer has (404), and the
        current versions of those it still has (they left the filters: another agent, another
        direction), which are not removed."""
        gone: list[Known] = []
        left: list[Observed] = []
        for known in unseen:
            try:
                current = await self.client.interaction(known.guid)
            except NotFoundError:
                gone.append(known)
            else:
                left.append(_observe(current, known))
        return gone, left

    def changes(self, *, every: Duration = DEFAULT_EVERY, once: bool = False) -> ChangeFeed:
        """Changes of pass after pass, a pass every ``every`` (start to start), or one pass
        with ``once``. A transient failure inside a pass is logged in one line and the next
        pass retries; refused credentials and invalid requests are raised. ``every`` is
        checked at once (zero: passes back to back)."""
        return self._passes(parse_duration(every, name="every").total_seconds(), once)

    async def _passes(self, interval: float, once: bool) -> AsyncGenerator[Change, None]:
        while not self._should_stop():
            began = time.monotonic()
            try:
                async with aclosing(self.run_pass()) as changes:
                    async for change in changes:
                        yield change
            except (AuthenticationError, InvalidRequestError, LeaseLostError):
                raise
            except VccError as exc:
                if once:
                    raise
                log.warning("sync pass failed, retrying at the next pass: %s", exc)
            else:
                if self.last is not None:
                    log.info("sync: %s", self.last.summary())
            if once or self.stopped:
                return
            await self._sleep(max(0.0, interval - (time.monotonic() - began)))


def _observe(item: Interaction, known: Known | None) -> Observed:
    data, print_ = snapshot(item)
    return Observed(item, print_, data, classify(print_, known))


@overload
def _decode(known: Known) -> Interaction: ...
@overload
def _decode(known: None) -> None: ...
def _decode(known: Known | None) -> Interaction | None:
    return None if known is None else structure_interaction(loads(known.data))
