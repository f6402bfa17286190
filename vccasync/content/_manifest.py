"""The download manifest: ``manifest.jsonl`` at the top of the destination, one file a line.

Each line is a JSON object written once the file it describes is complete and verified::

    {"guid": "...", "contentKey": "...", "type": "callRecording", "contentType": "audio/wav",
     "start": "2025-01-06T10:00:00Z", "path": "2025/01/06/<guid>/callRecording~cg.wav",
     "bytes": 123456, "sha256": "<hex>", "lastModified": "2025-01-06T10:05:00Z",
     "contentLength": 123456, "etag": "\"v1\"", "httpLastModified": "Mon, 06 Jan 2025 ..."}

The last four name the *version* archived: ``lastModified`` and ``contentLength`` as the search
reported them, ``etag``/``httpLastModified`` from the download's answer when the API sent
them. Lines written before versions were recorded lack them (read as ``None``): a rerun
downloads those files again, and a purge keeps them ("archived version unknown").

``path`` is relative to the destination, with ``/`` separators. The file is only appended to;
when a key appears on several lines (content fetched again), the last line wins. A line cut
short by a killed run is ignored on reading, and the next run starts on a fresh line.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from attrs import asdict, frozen

from .._instants import parse_instant
from .._models import Content

__all__ = ["MANIFEST_NAME", "Manifest", "ManifestEntry"]

MANIFEST_NAME: Final = "manifest.jsonl"
_FIELDS: Final = {
    "guid": "guid",
    "content_key": "contentKey",
    "type": "type",
    "content_type": "contentType",
    "start": "start",
    "path": "path",
    "bytes": "bytes",
    "sha256": "sha256",
}
_VERSION_FIELDS: Final = {
    "last_modified": "lastModified",
    "content_length": "contentLength",
    "etag": "etag",
    "http_last_modified": "httpLastModified",
}


@frozen
class ManifestEntry:
    """One downloaded file."""

    guid: str
    content_key: str
    type: str
    content_type: str | None
    start: str
    path: str
    bytes: int
    sha256: str
    last_modified: str | None = None
    content_length: int | None = None
    etag: str | None = None
    http_last_modified: str | None = None

    @property
    def version_known(self) -> bool:
        """Whether the line records the version it archived (``lastModified``)."""
        return self.last_modified is not None

    @property
    def archived_modified(self) -> datetime | None:
        """The recorded ``lastModified`` as an instant; None when absent or unreadable."""
        try:
            return None if self.last_modified is None else parse_instant(self.last_modified)
        except ValueError:
            return None

    def holds(self, piece: Content) -> bool:
        """Whether this line archived the version of ``piece`` the search shows now: the same
        ``lastModified`` and ``contentLength``. A line without a version (written before
        versions were recorded) does not when the API reports one: a rerun downloads it
        again and stamps it (when the API reports none, there is nothing to stamp: the sizes
        decide)."""
        if not self.version_known and piece.last_modified is None:
            return piece.content_length in (None, self.bytes)
        archived = self.archived_modified
        return (
            archived is not None
            and archived == piece.last_modified
            and self.content_length == piece.content_length
        )

    def describes(self, piece: Content, path: str, size: int | None) -> bool:
        """Whether the file at ``path`` (relative, ``/``), of ``size`` bytes on disk, is this
        line's and holds the version of ``piece`` the search shows now."""
        return path == self.path and size == self.bytes and self.holds(piece)

    def to_json(self) -> dict[str, Any]:
        """The manifest line's object (API-style camelCase names; unknown versions left out)."""
        names = _FIELDS | _VERSION_FIELDS
        return {names[k]: v for k, v in asdict(self).items() if v is not None or k in _FIELDS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManifestEntry:
        """Read a manifest line's object; ``KeyError``/``TypeError`` when it is not one."""
        values: dict[str, Any] = {k: data[v] for k, v in _FIELDS.items()}
        if not isinstance(values["bytes"], int) or not isinstance(values["path"], str):
            raise TypeError("not a manifest entry")
        version: dict[str, Any] = {k: data.get(v) for k, v in _VERSION_FIELDS.items()}
        if version["content_length"] is not None and not isinstance(version["content_length"], int):
            raise TypeError("not a manifest entry")
        return cls(**values, **version)


class Manifest:
    """The entries of a destination, by ``(guid, content key)``; appends as files complete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[tuple[str, str], ManifestEntry] = {}
        self._file: IO[bytes] | None = None

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read ``path`` if it exists (lines that are not entries are skipped)."""
        manifest = cls(path)
        if path.exists():
            with path.open("rb") as f:
                for line in f:
                    try:
                        entry = ManifestEntry.from_json(json.loads(line))
                    except (ValueError, KeyError, TypeError):
                        continue
                    manifest.entries[(entry.guid, entry.content_key)] = entry
        return manifest

    def get(self, guid: str, content_key: str) -> ManifestEntry | None:
        """The entry of one piece of content, if it was recorded."""
        return self.entries.get((guid, content_key))

    def add(self, entry: ManifestEntry) -> None:
        """Record ``entry``: one line, flushed."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a+b")
            if self._file.seek(0, os.SEEK_END):  # a previous run may have been killed mid-line
                self._file.seek(-1, os.SEEK_END)
                if self._file.read(1) != b"\n":
                    self._file.write(b"\n")
        self._file.write(json.dumps(entry.to_json()).encode("ascii") + b"\n")
        self._file.flush()
        self.entries[(entry.guid, entry.content_key)] = entry

    def close(self) -> None:
        """Close the file (entries stay readable)."""
        if self._file is not None:
            self._file.close()
            self._file = None
