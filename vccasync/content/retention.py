"""Which content may be deleted upstream: only what the archive holds, verified (pure, no I/O).

A piece of content is deleted only when the archive's manifest lists it, its file hashes now
to the manifest's sha256 with the manifest's size, and that size equals the ``contentLength``
the API reports now. Anything else is kept, with the reason. A piece the journal records as
already gone is never sent again. With ``whole=True`` an interaction is deleted whole only
when every one of its pieces may be deleted (or is already gone).

The I/O around this (search, hashing, journal, deletion) is in :mod:`.purge`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Final

from attrs import define, field, frozen

from ..models import Interaction
from .manifest import ManifestEntry
from .verify import FileCheck

__all__ = [
    "BATCH_SIZE",
    "Action",
    "Count",
    "Decision",
    "Piece",
    "Plan",
    "Reason",
    "TypeSummary",
    "decide",
    "make_plan",
    "paths_to_verify",
    "pieces_of",
]

BATCH_SIZE: Final = 1000  # guids per batch deletion, the API's maximum

PieceKey = tuple[str, str]


class Action(StrEnum):
    DELETE = "delete"
    KEEP = "keep"
    GONE = "already deleted"


class Reason(StrEnum):
    """Why a piece stays upstream."""

    NOT_IN_ARCHIVE = "not in archive"
    MISSING = "archive copy missing"
    DIFFERS = "archive copy differs"
    SIZE_DIFFERS = "size differs from the API's"
    NO_SIZE = "the API reports no size"
    CHANGED = "archive copy changed since it was verified"
    PARTNER_KEPT = "another piece of its interaction is kept"


@frozen
class Piece:
    """One piece of content upstream, as the search reports it now."""

    guid: str
    content_key: str
    type: str
    content_length: int | None

    @property
    def key(self) -> PieceKey:
        return (self.guid, self.content_key)


@frozen
class Decision:
    """What happens to one piece; ``entry`` is its manifest line when there is one."""

    piece: Piece
    action: Action
    reason: Reason | None = None
    entry: ManifestEntry | None = None

    @property
    def bytes(self) -> int:
        """The size counted for the piece: the API's, else the archive's."""
        if self.piece.content_length is not None:
            return self.piece.content_length
        return self.entry.bytes if self.entry is not None else 0

    def kept(self, reason: Reason) -> Decision:
        return Decision(self.piece, Action.KEEP, reason, self.entry)


def pieces_of(
    interactions: Iterable[Interaction], types: Collection[str] | None = None
) -> Iterator[Piece]:
    """The pieces of ``interactions`` (of ``types`` if given), each once."""
    seen: set[PieceKey] = set()
    for interaction in interactions:
        for content in interaction.content:
            kind = str(content.type)
            if types is not None and kind not in types:
                continue
            piece = Piece(interaction.guid, content.content_key, kind, content.content_length)
            if piece.key not in seen:
                seen.add(piece.key)
                yield piece


def paths_to_verify(
    pieces: Iterable[Piece],
    manifest: Mapping[PieceKey, ManifestEntry],
    gone: Collection[PieceKey] = (),
) -> list[str]:
    """The archive files a plan of ``pieces`` needs hashed (relative manifest paths)."""
    paths = (
        entry.path
        for p in pieces
        if p.key not in gone and (entry := manifest.get(p.key)) is not None
    )
    return list(dict.fromkeys(paths))


def decide(
    piece: Piece,
    entry: ManifestEntry | None,
    check: FileCheck | None,
    *,
    gone: bool = False,
) -> Decision:
    """The fate of one piece from its manifest entry and the hash of its file now."""
    if gone:
        return Decision(piece, Action.GONE, None, entry)
    if entry is None:
        return Decision(piece, Action.KEEP, Reason.NOT_IN_ARCHIVE)
    keep = Decision(piece, Action.KEEP, None, entry)
    if check is None or check.missing:
        return keep.kept(Reason.MISSING)
    if check.sha256 != entry.sha256 or check.size != entry.bytes:
        return keep.kept(Reason.DIFFERS)
    if piece.content_length is None:
        return keep.kept(Reason.NO_SIZE)
    if piece.content_length != check.size:
        return keep.kept(Reason.SIZE_DIFFERS)
    return Decision(piece, Action.DELETE, None, entry)


@define
class Count:
    pieces: int = 0
    bytes: int = 0

    def add(self, n: int) -> None:
        self.pieces += 1
        self.bytes += n


@define
class TypeSummary:
    """Pieces and bytes of one content type: to delete, already deleted, kept by reason."""

    delete: Count = field(factory=Count)
    gone: Count = field(factory=Count)
    kept: dict[Reason, Count] = field(factory=lambda: defaultdict(Count))


@frozen
class Plan:
    """Every decision of a run; ``whole`` lists the interactions to delete whole, if asked."""

    decisions: tuple[Decision, ...]
    whole: tuple[str, ...] | None = None

    def of(self, action: Action) -> list[Decision]:
        return [d for d in self.decisions if d.action is action]

    def batches(self, size: int = BATCH_SIZE) -> list[tuple[str, ...]]:
        """The whole interactions to delete, ``size`` guids a batch."""
        guids = self.whole or ()
        return [guids[i : i + size] for i in range(0, len(guids), size)]

    def summary(self) -> dict[str, TypeSummary]:
        """Per content type (sorted), pieces and bytes by fate."""
        out: dict[str, TypeSummary] = {}
        for d in sorted(self.decisions, key=lambda d: d.piece.type):
            kind = out.setdefault(d.piece.type, TypeSummary())
            if d.action is Action.DELETE:
                kind.delete.add(d.bytes)
            elif d.action is Action.GONE:
                kind.gone.add(d.bytes)
            else:
                kind.kept[d.reason or Reason.NOT_IN_ARCHIVE].add(d.bytes)
        return out


def make_plan(
    pieces: Iterable[Piece],
    manifest: Mapping[PieceKey, ManifestEntry],
    checks: Mapping[str, FileCheck],
    *,
    gone: Collection[PieceKey] = (),
    whole: bool = False,
) -> Plan:
    """Decide every piece (``checks`` by manifest path, ``gone`` from the journal); with
    ``whole``, keep every piece of an interaction that has one kept, and list the
    interactions that have something left to delete."""
    decisions: list[Decision] = []
    for piece in pieces:
        entry = manifest.get(piece.key)
        check = checks.get(entry.path) if entry is not None else None
        decisions.append(decide(piece, entry, check, gone=piece.key in gone))
    if not whole:
        return Plan(tuple(decisions))
    blocked = {d.piece.guid for d in decisions if d.action is Action.KEEP}
    decisions = [
        d.kept(Reason.PARTNER_KEPT) if d.action is Action.DELETE and d.piece.guid in blocked else d
        for d in decisions
    ]
    guids = (d.piece.guid for d in decisions if d.action is Action.DELETE)
    return Plan(tuple(decisions), tuple(dict.fromkeys(guids)))
