"""The content queue of a sync, as pure data: what a store owes the archive, and when to retry.

No I/O. A sync store keeps one queue row per piece it must download (``guid``, ``content_key``,
the piece's ``version``: :func:`piece_version`), written in the same transaction as the
interaction that brought it. A new version of a queued piece replaces the row's version,
attempts back to 0 (*superseded*). A row leaves the queue when the piece is downloaded, or
when it is *gone* upstream: its interaction found removed, a new version of the interaction
without the piece, or a 404 for its download. A failed download keeps the row with its
``attempts``, ``last_error`` and a ``next_try`` :func:`backoff` later.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Final

from attrs import frozen

from .._models import Content, Interaction
from ._fingerprint import piece_fingerprint

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_FIRST",
    "QueuePlan",
    "QueueStatus",
    "QueuedPiece",
    "Settlement",
    "backoff",
    "piece_version",
    "plan_queue",
    "wanted_pieces",
]

BACKOFF_FIRST: Final = timedelta(minutes=1)
BACKOFF_CAP: Final = timedelta(hours=1)


def piece_version(piece: Content) -> str:
    """The version of a piece a queue row names (hex digest of its API JSON: key, type,
    ``lastModified``, length, properties)."""
    return piece_fingerprint(piece).hex()


def backoff(
    attempts: int, first: timedelta = BACKOFF_FIRST, cap: timedelta = BACKOFF_CAP
) -> timedelta:
    """How long after its ``attempts``-th failure a piece is tried again: 1, 2, 4, ... minutes,
    at most an hour."""
    if attempts < 1:
        return timedelta(0)
    longer: timedelta = first * 2 ** min(attempts - 1, 32)
    return min(cap, longer)


def wanted_pieces(pieces: Iterable[Content], types: Collection[str] | None) -> list[Content]:
    """``pieces`` whose type is in ``types`` (all when None) and that have a key."""
    return [p for p in pieces if p.content_key and (types is None or str(p.type) in types)]


@frozen
class QueuedPiece:
    """A queue row taken for download: the interaction (cut down to this one piece, at the
    stored version), the version, and how many times it failed so far."""

    interaction: Interaction
    version: str
    attempts: int

    @property
    def key(self) -> tuple[str, str]:
        """``(guid, content_key)``."""
        return self.interaction.guid, self.interaction.content[0].content_key


@frozen
class Settlement:
    """What became of one queued piece's download: ``error`` None when it is on disk; ``gone``
    when the API no longer has it (404: it leaves the queue)."""

    guid: str
    content_key: str
    version: str
    error: str | None = None
    gone: bool = False


@frozen
class QueueStatus:
    """The queue of a store at one instant: its depth, how many pieces failed at least once,
    when the oldest row was queued, and the earliest next try of a failed one."""

    depth: int
    failed: int
    oldest: datetime | None
    next_try: datetime | None

    def age(self, now: datetime) -> float:
        """Seconds since the oldest row was queued (0 when empty)."""
        return 0.0 if self.oldest is None else max(0.0, (now - self.oldest).total_seconds())

    def summary(self, now: datetime) -> str:
        """``content queue: 3 pieces (1 failed), oldest queued 12m ago``."""
        if not self.depth:
            return "content queue: empty"
        minutes = round(self.age(now) / 60)
        text = (
            f"content queue: {self.depth:,} piece{'s' if self.depth != 1 else ''}"
            f" ({self.failed:,} failed), oldest queued {minutes}m ago"
        )
        if self.next_try is not None and self.failed:
            wait = max(0, round((self.next_try - now).total_seconds()))
            text += f"; next retry in {wait}s"
        return text


@frozen
class QueuePlan:
    """How a page's written rows change the queue: rows to upsert ``(guid, key, type,
    version)``, rows to delete ``(guid, key)`` (pieces gone upstream: the current version of
    their interaction lacks them), and how many queued versions a new one supersedes."""

    upserts: list[tuple[str, str, str, str]]
    deletes: list[tuple[str, str]]
    superseded: int

    @property
    def gone(self) -> int:
        """Queued pieces gone upstream."""
        return len(self.deletes)


def plan_queue(
    existing: dict[tuple[str, str], str],
    written: Iterable[tuple[Interaction, Iterable[Content]]],
    types: Collection[str] | None,
) -> QueuePlan:
    """What writing ``written`` (each interaction's current version with the pieces its change
    brings) does to the queue rows ``existing`` (``(guid, key)`` to version) of those guids:
    wanted pieces brought are queued at their version (superseding another queued version); a
    queued piece the current version no longer has is dropped (gone upstream)."""
    upserts: list[tuple[str, str, str, str]] = []
    deletes: list[tuple[str, str]] = []
    superseded = 0
    queued: dict[str, list[str]] = {}
    for guid, key in existing:
        queued.setdefault(guid, []).append(key)
    for item, pieces in written:
        keys = {piece.content_key for piece in item.content}
        for key in queued.get(item.guid, ()):
            if key not in keys:
                deletes.append((item.guid, key))
        for piece in wanted_pieces(pieces, types):
            version = piece_version(piece)
            before = existing.get((item.guid, piece.content_key))
            if before is not None and before != version:
                superseded += 1
            upserts.append((item.guid, piece.content_key, str(piece.type), version))
    return QueuePlan(upserts, deletes, superseded)
