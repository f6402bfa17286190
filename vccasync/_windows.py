"""Pure planning of search windows: any [start, end] as windows the API accepts (<= 7 days).

Consecutive windows share their boundary instant in the query, so that an interaction on a
boundary is asked for by both windows whether the server reads ``end`` as inclusive or as
exclusive. Each instant is *owned* by exactly one window (``[start, end)``, the last window
``[start, end]``); an interaction a window does not own is dropped, so nothing is lost and
nothing is yielded twice.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import overload

from attrs import field, frozen

from ._instants import RESOLUTION, floor_instant, format_instant
from ._models import Interaction

__all__ = [
    "MAX_SPAN",
    "RESOLUTION",
    "Page",
    "Repair",
    "ResumePlan",
    "Window",
    "WindowPlan",
    "floor_instant",
    "split",
    "split_at",
    "sub_window_count",
]

MAX_SPAN = timedelta(days=7)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
MIN_PAGES = 2  # expected pages per sub-window at least: each window ends with a partial page


@frozen(order=True)
class Window:
    """One search query's time span; ``closed`` windows own their ``end`` instant too.

    ``after`` is a continuation token the window's chain of pages starts from when it is
    pending from its start: the window re-covers part of a split window's span, following
    that window's chain (see :mod:`vccasync.order`). ``chain_end`` is then the ``end`` that
    chain was asked with: a token is sent with exactly the query it came from, and the
    window keeps only what it owns.
    """

    start: datetime
    end: datetime
    closed: bool = False
    after: str | None = field(default=None, order=lambda token: token or "")
    chain_end: datetime | None = field(default=None, order=lambda moment: moment or _EARLIEST)

    @property
    def query_end(self) -> datetime:
        """The ``end`` sent to the API: one tick beyond ``end`` when the window owns it."""
        if self.chain_end is not None:
            return self.chain_end
        return self.end + RESOLUTION if self.closed else self.end

    def owns(self, moment: datetime) -> bool:
        """Whether an interaction starting at ``moment`` belongs to this window."""
        return self.start <= moment and (moment <= self.end if self.closed else moment < self.end)

    @property
    def key(self) -> str:
        """A stable text form, for checkpoints and logs: the span, then ``~chain_end`` and
        ``#token`` when set."""
        bracket = "]" if self.closed else ")"
        span = f"{format_instant(self.start)}/{format_instant(self.end)}{bracket}"
        if self.chain_end is not None:
            span += f"~{format_instant(self.chain_end)}"
        return span if self.after is None else f"{span}#{self.after}"

    @classmethod
    def from_key(cls, key: str) -> Window:
        """The inverse of ``key``."""
        span, mark, after = key.partition("#")
        span, tilde, chain_end = span.partition("~")
        start, end = span[:-1].split("/")
        return cls(
            datetime.fromisoformat(start),
            datetime.fromisoformat(end),
            span[-1] == "]",
            after if mark else None,
            datetime.fromisoformat(chain_end) if tilde else None,
        )


def _ceil(moment: datetime) -> datetime:
    floored = floor_instant(moment)
    return floored if floored == moment else floored + RESOLUTION


def split(start: datetime, end: datetime, max_span: timedelta = MAX_SPAN) -> list[Window]:
    """Cover [start, end] (both aware, both owned) with windows whose queries span <= max_span.

    Boundaries fall on whole milliseconds, so the instants the API sees are exactly the ones
    planned; callers filter the interactions of the edge windows to their own [start, end].
    """
    if end < start:
        raise ValueError("end is before start")
    if max_span <= RESOLUTION:
        raise ValueError("max_span must be longer than the API's resolution")
    first, last = floor_instant(start), _ceil(end)
    windows = []
    cursor = first
    while last + RESOLUTION - cursor > max_span:
        windows.append(Window(cursor, cursor + max_span))
        cursor += max_span
    windows.append(Window(cursor, last, closed=True))
    return windows


def split_at(window: Window, cut: datetime, inner: Sequence[datetime]) -> list[Window]:
    """``[cut, window.end)`` as consecutive windows meeting at the ``inner`` instants.

    ``cut`` is on a whole millisecond inside the window; ``inner`` instants are floored to
    the millisecond, and those not strictly between the previous boundary and the window's
    end are left out; the last window is ``closed`` when ``window`` is, so the sub-windows
    own exactly the instants of ``window`` from ``cut`` on.
    """
    if not window.start < cut < window.end or floor_instant(cut) != cut:
        raise ValueError("cut must be a whole millisecond strictly inside the window")
    edges = [cut]
    for moment in map(floor_instant, inner):
        if edges[-1] < moment < window.end:
            edges.append(moment)
    edges.append(window.end)
    return [
        Window(a, b, closed=window.closed and b == window.end) for a, b in itertools.pairwise(edges)
    ]


def sub_window_count(
    *, first: datetime, cut: datetime, items: int, end: datetime, page_size: int, spare: int
) -> int:
    """How many sub-windows should share ``[cut, end)`` (1: do not split).

    ``items`` interactions of a full page spanned ``[first, cut)``; at that density the rest
    holds about ``pages`` pages. Each sub-window gets at least ``MIN_PAGES`` expected pages
    (every window ends with a partial page, so more windows cost requests), and there are at
    most ``spare`` + 1 of them: as many as the budget can run at once besides what runs.
    """
    span = (cut - first) / RESOLUTION
    if span <= 0 or spare < 1 or page_size < 1:
        return 1
    pages = (end - cut) / RESOLUTION * items / span / page_size
    return max(1, min(spare + 1, math.floor(pages / MIN_PAGES)))


@frozen
class Repair:
    """What a window split at a cut still owns, and the guids it gave at its latest instant.

    ``window`` (``[split.start, cut)``) follows the split window's chain from the token it
    dropped (``window.after``), asked with the split window's own ``end``
    (``window.chain_end``), so a checkpoint that holds it resumes it exactly; ``seen``
    (a few guids) are dropped if they come again, so a search holding many splits stays small.
    """

    window: Window
    seen: frozenset[str]

    @classmethod
    def of(cls, split: Window, cut: datetime, token: str, seen: Iterable[str]) -> Repair:
        """The repair of ``split``, cut at ``cut`` after the page that continued at ``token``."""
        window = Window(split.start, cut, after=token, chain_end=split.query_end)
        return cls(window, frozenset(seen))


WindowPlan = Sequence[tuple[Window, str | None]]  # windows to run, each from its token


@frozen
class ResumePlan(Sequence[tuple[Window, str | None]]):
    """A :data:`WindowPlan` resumed from a checkpoint, with how the search stood on the
    server's order: the :class:`Repair` of every window split so far and not yet re-covered,
    and whether a page already broke the order (then the repairs are among ``windows``)."""

    windows: tuple[tuple[Window, str | None], ...]
    repairs: tuple[Repair, ...] = ()
    order_broken: bool = False

    def __len__(self) -> int:
        return len(self.windows)

    @overload
    def __getitem__(self, index: int) -> tuple[Window, str | None]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[Window, str | None]]: ...
    def __getitem__(
        self, index: int | slice
    ) -> tuple[Window, str | None] | Sequence[tuple[Window, str | None]]:
        return self.windows[index]

    def __iter__(self) -> Iterator[tuple[Window, str | None]]:
        return iter(self.windows)


@frozen
class Page:
    """One API page of a window, already filtered to what the window owns.

    A checkpoint follows pages generically: after a page, ``window`` resumes from
    ``next_token`` (or is finished when ``last``), and each window of ``spawned`` is pending
    from its start. Spawned windows take over the rest of ``window``'s span (a split) or,
    on the first page out of order, re-cover what windows split earlier still own (repairs).
    A page that split its window on the strength of the order carries the ``repair`` that
    window needs should a later page break the order; a checkpoint keeps it until then.
    """

    window: Window
    items: list[Interaction]
    next_token: str | None
    spawned: tuple[Window, ...] = ()
    repair: Repair | None = None

    @property
    def last(self) -> bool:
        """Whether this page ends its window."""
        return self.next_token is None
