"""Pieces reprocessed upstream on demand: other bytes, a later ``lastModified``, any length.

A test calls :meth:`Revisions.reprocess` (through ``FakeVccServer.reprocess``) to replace one
piece's bytes, as a re-transcription or a re-encoded recording would upstream. Every later
search, get-one and content answer shows the new version: ``lastModified`` one minute after the
version it replaces, ``contentLength`` as asked (the same by default), and bytes drawn with the
revision's tag (:func:`vccasync.fake.content.content_chunks`). Pieces never reprocessed are
shown as they are. Safe to call from another thread than the server's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

import attrs

from vccasync.fake.dataset import Item
from vccasync.fake.instants import iso, to_ms

__all__ = ["Revision", "Revisions"]

STEP: Final = timedelta(minutes=1)  # each revision's lastModified is this much later


@attrs.frozen
class Revision:
    """The current version of a reprocessed piece."""

    number: int
    last_modified: str
    content_length: int

    @property
    def tag(self) -> str:
        """What the piece's bytes are drawn with."""
        return f"r{self.number}"


class Revisions:
    """The reprocessed pieces by ``(guid, content key)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_piece: dict[tuple[str, str], Revision] = {}

    def tag(self, guid: str, key: str) -> str:
        """The version tag of a piece's bytes ("" when never reprocessed)."""
        revision = self._by_piece.get((guid, key))
        return "" if revision is None else revision.tag

    def reprocess(self, guid: str, piece: Item, length: int | None = None) -> Revision:
        """A new version of ``piece`` (as shown now) of ``guid``, ``length`` bytes long."""
        if length is not None and length < 0:
            raise ValueError("length must not be negative")
        shown = datetime.fromisoformat(piece["lastModified"].replace("Z", "+00:00"))
        with self._lock:
            old = self._by_piece.get((guid, piece["contentKey"]))
            revision = Revision(
                1 if old is None else old.number + 1,
                iso(to_ms(shown + STEP)),
                piece["contentLength"] if length is None else length,
            )
            self._by_piece[(guid, piece["contentKey"])] = revision
        return revision

    def apply(self, item: Item | None) -> Item | None:
        """``item`` with its reprocessed pieces in their current version (a new dict)."""
        if item is None or not self._by_piece:
            return item
        pieces = [self._piece(item["guid"], piece) for piece in item.get("content", ())]
        return {**item, "content": pieces}

    def apply_all(self, items: Iterable[Item]) -> list[Item]:
        """:meth:`apply` to each of ``items``."""
        return [self.apply(item) or item for item in items]

    def _piece(self, guid: str, piece: Item) -> Item:
        revision = self._by_piece.get((guid, piece["contentKey"]))
        if revision is None:
            return piece
        return {
            **piece,
            "lastModified": revision.last_modified,
            "contentLength": revision.content_length,
        }
