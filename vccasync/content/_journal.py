"""The deletion journal: ``deletions.jsonl`` in the archive, one fsynced JSON object a line.

Every deletion is written twice: an ``intent`` before the request is sent and its outcome
after: ``deleted``, ``already-gone``, ``failed`` (a 4xx answer: the API refused it, nothing
was deleted) or ``unknown`` (a timeout, a dropped connection, a 5xx, an unreadable answer:
the request may have been carried out)::

    {"guid": "...", "contentKey": "...", "sha256": "<archived copy>", "bytes": 123,
     "scope": "content", "time": "2026-11-25T14:00:00.000Z", "outcome": "intent"}

``scope`` is ``interaction`` when the piece went with its whole interaction. Each append is
flushed and fsynced before the caller goes on, so after a ``kill -9`` the journal holds every
deletion that may have been sent. On reading, the last record of a piece wins and a line cut
short by a kill is ignored (the next append starts on a fresh line). :func:`replay` turns the
records into what a rerun needs: pieces gone, and pieces whose intent has no outcome or an
``unknown`` one (sent or not, done or not: to be checked upstream before anything else).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final

from attrs import define, field, frozen

from .._instants import format_instant

__all__ = [
    "JOURNAL_NAME",
    "Journal",
    "JournalRecord",
    "JournalState",
    "Outcome",
    "read_records",
    "replay",
]

JOURNAL_NAME: Final = "deletions.jsonl"

PieceKey = tuple[str, str]


class Outcome(StrEnum):
    """What a journal record says of one piece."""

    INTENT = "intent"
    DELETED = "deleted"
    ALREADY_GONE = "already-gone"
    FAILED = "failed"
    UNKNOWN = "unknown"


GONE: Final = frozenset({Outcome.DELETED, Outcome.ALREADY_GONE})
UNSETTLED: Final = frozenset({Outcome.INTENT, Outcome.UNKNOWN})


@frozen(kw_only=True)
class JournalRecord:
    """One line of the journal."""

    guid: str
    content_key: str
    sha256: str
    bytes: int
    outcome: Outcome
    scope: str = "content"
    time: str = field(factory=lambda: format_instant(datetime.now(UTC)))
    message: str | None = None

    @property
    def key(self) -> PieceKey:
        return (self.guid, self.content_key)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "guid": self.guid,
            "contentKey": self.content_key,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "scope": self.scope,
            "time": self.time,
            "outcome": str(self.outcome),
        }
        if self.message is not None:
            data["message"] = self.message
        return data

    @classmethod
    def from_json(cls, data: Any) -> JournalRecord:
        """Read a line's object; ``ValueError``/``KeyError``/``TypeError`` when it is not one."""
        record = cls(
            guid=data["guid"],
            content_key=data["contentKey"],
            sha256=data["sha256"],
            bytes=data["bytes"],
            outcome=Outcome(data["outcome"]),
            scope=data.get("scope", "content"),
            time=data["time"],
            message=data.get("message"),
        )
        if not all(isinstance(v, str) for v in (record.guid, record.content_key, record.sha256)):
            raise TypeError("not a journal record")
        return record

    def then(self, outcome: Outcome, message: str | None = None) -> JournalRecord:
        """The record of this piece's ``outcome``, now."""
        return JournalRecord(
            guid=self.guid,
            content_key=self.content_key,
            sha256=self.sha256,
            bytes=self.bytes,
            scope=self.scope,
            outcome=outcome,
            message=message,
        )


@define
class JournalState:
    """What the journal says, piece by piece (the last record of each wins)."""

    gone: dict[PieceKey, JournalRecord] = field(factory=dict)
    pending: dict[PieceKey, JournalRecord] = field(factory=dict)
    failed: dict[PieceKey, JournalRecord] = field(factory=dict)


def replay(records: Iterable[JournalRecord]) -> JournalState:
    """Fold records in order, the last of a piece winning: gone, pending (an intent without an
    outcome, or an unknown outcome) or failed (refused: retried by the next run). A piece
    deleted again after it was gone (re-created upstream) is pending again from its intent."""
    state = JournalState()
    for record in records:
        key = record.key
        for fate in (state.gone, state.pending, state.failed):
            fate.pop(key, None)
        if record.outcome in GONE:
            state.gone[key] = record
        elif record.outcome in UNSETTLED:
            state.pending[key] = record
        else:
            state.failed[key] = record
    return state


def read_records(path: Path) -> list[JournalRecord]:
    """Every readable record of ``path`` in order (none if it does not exist)."""
    records: list[JournalRecord] = []
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return records
    with f:
        for line in f:
            try:
                records.append(JournalRecord.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue
    return records


class Journal:
    """Appends records to ``path``; every :meth:`append` is on disk when it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def _open(self) -> IO[bytes]:
        if self._file is None:
            created = not self.path.exists()
            self._file = self.path.open("a+b")
            if self._file.seek(0, os.SEEK_END):  # a killed run may have cut its last line
                self._file.seek(-1, os.SEEK_END)
                if self._file.read(1) != b"\n":
                    self._file.write(b"\n")
            if created:  # the new name must survive a crash too
                _fsync_directory(self.path.parent)
        return self._file

    def append(self, records: Sequence[JournalRecord]) -> None:
        """Write ``records`` (one line each), flush and fsync (blocking: call from a thread)."""
        if not records:
            return
        f = self._open()
        f.write(b"".join(json.dumps(r.to_json()).encode("ascii") + b"\n" for r in records))
        f.flush()
        os.fsync(f.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
