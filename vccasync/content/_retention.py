"""Which content may be deleted upstream: only the version the archive holds (pure, no I/O).

A piece of content is deleted only when the archive's manifest lists it at a path inside the
archive, its file hashes now to the manifest's sha256 with the manifest's size, that size
equals the ``contentLength`` the API reports now (and the one the manifest recorded), and the
archived version is the API's: the manifest's ``lastModified`` is the same instant as the
API's, and the download's own validators agree with it (its ``httpLastModified``, when
recorded, is that instant). A manifest line without a version (written before versions were
recorded) is never trusted (no rule relies on a file's modification time, which a copy or a
``touch`` changes): it is kept as "archived version unknown" until ``vccasync content``
downloads it again. Anything else is kept, with the reason. With ``whole=True`` an
interaction is deleted whole only when every piece the API lists for it may be deleted; a
piece the journal records as deleted but the API lists again blocks it (re-created upstream).

Every deletion follows its own :class:`Check` (the interaction as the API showed it, and
when): it is sent only while the check is younger than the bound (:data:`MAX_CHECK_AGE`), and
:func:`batch_size` sizes batches of whole interactions so that their checks fit in it.

The I/O around this (search, hashing, journal, checks, deletion) is in :mod:`.purge`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final

from attrs import define, field, frozen

from .._models import Interaction
from ._manifest import ManifestEntry
from ._verify import FileCheck

__all__ = [
    "BATCH_SIZE",
    "CHECK_SHARE",
    "MAX_CHECK_AGE",
    "Action",
    "Check",
    "Count",
    "Decision",
    "Piece",
    "PieceKey",
    "Plan",
    "Reason",
    "TypeSummary",
    "batch_size",
    "decide",
    "keep_partners",
    "make_plan",
    "path_problem",
    "paths_to_verify",
    "pieces_of",
    "validators_agree",
]

BATCH_SIZE: Final = 1000  # guids per batch deletion, the API's maximum
MAX_CHECK_AGE: Final = 10.0  # seconds: a deletion leaves at most this long after its check
CHECK_SHARE: Final = 0.5  # of the bound, for fetching a batch's interactions

PieceKey = tuple[str, str]


class Action(StrEnum):
    DELETE = "delete"
    KEEP = "keep"


class Reason(StrEnum):
    """Why a piece stays upstream."""

    NOT_IN_ARCHIVE = "not in archive"
    ABSOLUTE_PATH = "not in archive: its manifest path is absolute"
    PARENT_PATH = "not in archive: its manifest path contains '..'"
    OUTSIDE = "not in archive: its manifest path resolves outside the archive"
    MISSING = "archive copy missing"
    DIFFERS = "archive copy differs"
    SIZE_DIFFERS = "size differs from the API's"
    NO_SIZE = "the API reports no size"
    OLDER_VERSION = "archive holds an older version"
    VALIDATORS_DIFFER = "archived bytes do not match the listed version"
    OTHER_VERSION = "archive holds another version"
    NO_VERSION = "the API reports no lastModified"
    VERSION_UNKNOWN = "archived version unknown"
    RECREATED = "piece re-created upstream"
    CHANGED = "archive copy changed since it was verified"
    PARTNER_KEPT = "another piece of its interaction is kept"
    NOT_REFETCHED = "could not be fetched again before its deletion"
    CHECK_TOO_OLD = "its check could not be followed by its deletion within the bound"
    PENDING_UNSETTLED = "pending outcome not settled"


@frozen
class Piece:
    """One piece of content upstream, as the API reports it now."""

    guid: str
    content_key: str
    type: str
    content_length: int | None
    last_modified: datetime | None = None

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


@frozen
class Check:
    """What the API showed of one interaction (``pieces``: none when it is gone) at ``at``
    (seconds of a monotonic clock): what one deletion is decided on."""

    guid: str
    pieces: Mapping[PieceKey, Piece]
    at: float

    def age(self, now: float) -> float:
        return now - self.at

    def fresh(self, now: float, bound: float) -> bool:
        """Whether a deletion leaving ``now`` may still rely on this check."""
        return self.age(now) <= bound


def batch_size(max_age: float, requests_per_minute: float | None) -> int:
    """Interactions a batch may hold: as many as the request budget fetches in
    :data:`CHECK_SHARE` of ``max_age`` (the rest is left for the batch's own wait), 1 to
    :data:`BATCH_SIZE`; the API's maximum without a budget."""
    if requests_per_minute is None:
        return BATCH_SIZE
    fits = math.floor(requests_per_minute / 60.0 * max_age * CHECK_SHARE)
    return max(1, min(BATCH_SIZE, fits))


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
            piece = Piece(
                interaction.guid,
                content.content_key,
                kind,
                content.content_length,
                content.last_modified,
            )
            if piece.key not in seen:
                seen.add(piece.key)
                yield piece


def path_problem(rel: str) -> Reason | None:
    """Why a manifest path cannot name a file of the archive (absolute, or going up), if so.

    Where a path inside leads once symbolic links are followed is checked on disk
    (:func:`.verify.check_file`)."""
    if rel.startswith("/") or rel.startswith("\\"):
        return Reason.ABSOLUTE_PATH
    if ".." in rel.replace("\\", "/").split("/"):
        return Reason.PARENT_PATH
    return None


def paths_to_verify(
    pieces: Iterable[Piece], manifest: Mapping[PieceKey, ManifestEntry]
) -> list[str]:
    """The archive files a plan of ``pieces`` needs hashed (relative manifest paths; never one
    that leaves the archive)."""
    paths = (
        entry.path
        for p in pieces
        if (entry := manifest.get(p.key)) is not None and path_problem(entry.path) is None
    )
    return list(dict.fromkeys(paths))


def decide(
    piece: Piece,
    entry: ManifestEntry | None,
    check: FileCheck | None,
    *,
    recreated: bool = False,
) -> Decision:
    """The fate of one piece from its manifest entry and the hash of its file now;
    ``recreated``: the journal records it deleted, yet the API lists it."""
    if entry is None:
        return Decision(piece, Action.KEEP, Reason.NOT_IN_ARCHIVE)
    keep = Decision(piece, Action.KEEP, None, entry)
    if recreated:
        return keep.kept(Reason.RECREATED)
    if (problem := path_problem(entry.path)) is not None:
        return keep.kept(problem)
    if check is not None and check.outside:
        return keep.kept(Reason.OUTSIDE)
    if check is None or check.missing:
        return keep.kept(Reason.MISSING)
    if check.sha256 != entry.sha256 or check.size != entry.bytes:
        return keep.kept(Reason.DIFFERS)
    if piece.content_length is None:
        return keep.kept(Reason.NO_SIZE)
    if piece.content_length != check.size or entry.content_length not in (None, check.size):
        return keep.kept(Reason.SIZE_DIFFERS)
    if (reason := _version_reason(piece, entry)) is not None:
        return keep.kept(reason)
    return Decision(piece, Action.DELETE, None, entry)


def _version_reason(piece: Piece, entry: ManifestEntry) -> Reason | None:
    """Why the archived version is not (or not known to be) the API's, if so."""
    archived = entry.archived_modified
    if archived is None:  # never guessed from the file's modification time
        return Reason.VERSION_UNKNOWN
    if not validators_agree(entry, archived):
        return Reason.VALIDATORS_DIFFER
    if piece.last_modified is None:
        return Reason.NO_VERSION
    if piece.last_modified > archived:
        return Reason.OLDER_VERSION
    return None if piece.last_modified == archived else Reason.OTHER_VERSION


def validators_agree(entry: ManifestEntry, archived: datetime) -> bool:
    """Whether the download's ``Last-Modified`` (when recorded) is the listed ``lastModified``
    (to the second, an HTTP date's precision): otherwise the bytes came as another version."""
    if entry.http_last_modified is None:
        return True
    try:
        sent = parsedate_to_datetime(entry.http_last_modified)
    except (TypeError, ValueError):
        return False
    return sent.tzinfo is not None and sent == archived.replace(microsecond=0)


@define
class Count:
    pieces: int = 0
    bytes: int = 0

    def add(self, n: int) -> None:
        self.pieces += 1
        self.bytes += n


@define
class TypeSummary:
    """Pieces and bytes of one content type: to delete, kept by reason."""

    delete: Count = field(factory=Count)
    kept: dict[Reason, Count] = field(factory=lambda: defaultdict(Count))


@frozen
class Plan:
    """Every decision of a run; ``whole`` lists the interactions to delete whole, if asked,
    at most ``batch_size`` a batch; ``gone``: pieces and bytes per type the journal records
    as deleted that the search no longer lists."""

    decisions: tuple[Decision, ...]
    whole: tuple[str, ...] | None = None
    batch_size: int = BATCH_SIZE
    gone: Mapping[str, Count] = field(factory=dict)

    def of(self, action: Action) -> list[Decision]:
        return [d for d in self.decisions if d.action is action]

    def batches(self, size: int | None = None) -> list[tuple[str, ...]]:
        """The whole interactions to delete, ``size`` (default: the plan's) guids a batch."""
        size = size or self.batch_size
        guids = self.whole or ()
        return [guids[i : i + size] for i in range(0, len(guids), size)]

    def summary(self) -> dict[str, TypeSummary]:
        """Per content type (sorted), pieces and bytes by fate."""
        out: dict[str, TypeSummary] = {}
        for d in sorted(self.decisions, key=lambda d: d.piece.type):
            kind = out.setdefault(d.piece.type, TypeSummary())
            if d.action is Action.DELETE:
                kind.delete.add(d.bytes)
            else:
                kind.kept[d.reason or Reason.NOT_IN_ARCHIVE].add(d.bytes)
        return out


def keep_partners(decisions: Iterable[Decision]) -> list[Decision]:
    """``decisions`` with every piece to delete kept when a piece of its interaction is."""
    decisions = list(decisions)
    blocked = {d.piece.guid for d in decisions if d.action is Action.KEEP}
    return [
        d.kept(Reason.PARTNER_KEPT) if d.action is Action.DELETE and d.piece.guid in blocked else d
        for d in decisions
    ]


def make_plan(
    pieces: Iterable[Piece],
    manifest: Mapping[PieceKey, ManifestEntry],
    checks: Mapping[str, FileCheck],
    *,
    deleted: Collection[PieceKey] = (),
    whole: bool = False,
    size: int = BATCH_SIZE,
    gone: Mapping[str, Count] | None = None,
) -> Plan:
    """Decide every piece (``checks`` by manifest path, ``deleted``: what the journal records
    as gone). A piece listed again after its deletion is decided afresh (deleted again when
    it verifies), except with ``whole``: then it is kept as re-created, and so is every piece
    of an interaction that has one kept; the plan lists the interactions left to delete,
    ``size`` a batch. ``gone`` is passed through (see :class:`Plan`)."""
    decisions: list[Decision] = []
    for piece in pieces:
        entry = manifest.get(piece.key)
        check = checks.get(entry.path) if entry is not None else None
        recreated = whole and piece.key in deleted
        decisions.append(decide(piece, entry, check, recreated=recreated))
    gone = dict(gone or {})
    if not whole:
        return Plan(tuple(decisions), gone=gone)
    decisions = keep_partners(decisions)
    guids = (d.piece.guid for d in decisions if d.action is Action.DELETE)
    return Plan(tuple(decisions), tuple(dict.fromkeys(guids)), size, gone)
