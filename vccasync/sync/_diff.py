"""Pure change detection: pass spans, classification of what a pass saw, removals.

No I/O. A *pass* scans one span ``[start, end]`` (both included) completely. The state of a
sync is *complete* over a span ``coverage``: every interaction the API showed there at
``coverage.end`` is known. The next pass starts ``lookback`` before the end of the coverage
(content keeps arriving after an interaction ends) and ends now.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Literal

from attrs import frozen

from .._errors import InvalidRequestError
from .._models import Interaction

__all__ = ["Change", "ChangeKind", "Known", "Span", "ahead", "classify", "plan_span", "removed"]

ChangeKind = Literal["new", "changed", "removed"]


@frozen
class Span:
    """An interval of interaction start instants, both ends included."""

    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment <= self.end


@frozen
class Known:
    """What a sync state remembers of one interaction.

    ``fingerprint`` is :func:`~vccasync.sync._fingerprint.fingerprint` of the last version
    seen; ``data`` is that version's API JSON (to yield it when it is removed or to compare
    pieces when it changed); ``removed`` when a pass already found it gone.
    """

    guid: str
    start: datetime
    fingerprint: bytes
    data: bytes
    removed: bool = False


@frozen
class Change:
    """One change a pass found. ``interaction`` is the current version (the last known one
    for "removed"); ``previous`` the last known version for "changed", else None."""

    kind: ChangeKind
    interaction: Interaction
    previous: Interaction | None = None


def plan_span(
    coverage: Span | None,
    *,
    since: datetime | None,
    lookback: timedelta,
    now: datetime,
) -> Span:
    """The span of the next pass.

    First pass (no coverage): ``[since, now]`` (``since`` required, refused in the future).
    Later passes: ``[coverage.end - lookback, now]``, never before ``coverage.start``, except
    that a ``since`` earlier than the coverage extends history backwards from ``since``. A
    coverage ending after ``now`` (a pass ran with the clock ahead, or the clock stepped
    back: see :func:`ahead`) counts as ending ``now``, so the pass rescans the lookback
    before now and the store never refuses to go on. The end is ``now``, never before the
    start.
    """
    if coverage is None:
        if since is None:
            raise InvalidRequestError("the first sync needs a start instant (since)")
        if since > now:
            raise InvalidRequestError(f"since ({since.isoformat()}) is in the future")
        return Span(since, now)
    end = min(coverage.end, now)
    start = end - lookback if coverage.start > end else max(coverage.start, end - lookback)
    if since is not None and since < coverage.start:
        start = min(start, since)
    return Span(start, now)


def ahead(coverage: Span | None, now: datetime) -> bool:
    """Whether ``coverage`` ends after ``now`` (the clock was ahead, or stepped back)."""
    return coverage is not None and coverage.end > now


def classify(fingerprint: bytes, known: Known | None) -> ChangeKind | None:
    """ "new" (unknown, or back after a removal), "changed", or None when unchanged."""
    if known is None or known.removed:
        return "new"
    return None if known.fingerprint == fingerprint else "changed"


def removed(known: Iterable[Known], span: Span, seen: Collection[str]) -> list[Known]:
    """Known interactions that a complete pass over ``span`` did not return.

    Only interactions starting inside ``span`` are judged; those already removed are not
    removed again.
    """
    return [k for k in known if not k.removed and k.start in span and k.guid not in seen]
