"""JSON lines: one interaction a line in the API's JSON shape, to a file or stdout.

A file is appended, flushed and fsynced page by page; then its checkpoint (with the file's
length) replaces the old one atomically (``FILE.checkpoint.json`` beside it). On resume the
file is cut back to the checkpointed length before appending, so a run killed at any moment
loses and repeats nothing. Standard output has no checkpoint (nothing to resume into).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO

from .._converter import to_api
from .._errors import InvalidRequestError
from .._jsonio import loads
from .._models import Interaction
from .._query import SearchQuery
from .._windows import Page
from ._base import ThreadedSink, cannot_write, dumps, lock, refuse_other_query
from ._checkpoint import Checkpoint

__all__ = ["JsonlFile", "JsonlSink", "StdoutLines", "StdoutSink", "checkpoint_path"]


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """Where the checkpoint of a JSONL output lives: beside it."""
    return Path(f"{os.fspath(path)}.checkpoint.json")


def _lines(page: Page) -> bytes:
    return b"".join(_line(item) for item in page.items)


def _line(item: Interaction) -> bytes:
    return dumps(to_api(item)) + b"\n"


class StdoutLines:
    """JSON lines on a binary stream (standard output by default); blocking."""

    def __init__(self, query: SearchQuery, stream: IO[bytes] | None = None) -> None:
        self.target = "stdout"
        self.checkpoint = Checkpoint.start(query)
        self._stream = stream if stream is not None else sys.stdout.buffer

    def write_page(self, page: Page) -> None:
        """Write the page's lines and flush them."""
        self._stream.write(_lines(page))
        self._stream.flush()
        self.checkpoint.advance(page)

    def close(self) -> None:
        """Flush what is left."""
        with contextlib.suppress(OSError):
            self._stream.flush()


class StdoutSink(ThreadedSink):
    """JSON lines on standard output, written off the event loop; nothing to resume."""

    @classmethod
    async def open(cls, query: SearchQuery, stream: IO[bytes] | None = None) -> StdoutSink:
        """The sink of ``stream`` (default: standard output)."""
        return await cls.start(lambda: StdoutLines(query, stream))


class JsonlFile:
    """A JSONL file and its checkpoint beside it; every call blocks (see ``JsonlSink``)."""

    def __init__(self, path: Path, query: SearchQuery, *, overwrite: bool = False) -> None:
        self.target = str(path)
        self.path = path
        self.checkpoint_file = checkpoint_path(path)
        try:
            self.checkpoint, self._file = self._open(query, overwrite)
        except OSError as exc:
            raise cannot_write(path, exc) from None

    def _open(self, query: SearchQuery, overwrite: bool) -> tuple[Checkpoint, IO[bytes]]:
        handle = open(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666), "r+b")  # noqa: SIM115
        try:
            lock(handle, self.path)
            size = handle.seek(0, os.SEEK_END)
            stored = None if overwrite else self._load()
            if stored is None:
                if size and not overwrite:
                    raise InvalidRequestError(
                        f"{self.path} exists and was not written by vccasync (no"
                        f" {self.checkpoint_file.name}): use --overwrite to replace it"
                    )
                checkpoint, length = Checkpoint.start(query), 0
            else:
                checkpoint, length = stored
                refuse_other_query(self.path, checkpoint, query)
                if size < length:
                    raise InvalidRequestError(
                        f"{self.path} is shorter ({size} bytes) than its checkpoint says"
                        f" ({length}): it was changed outside vccasync; use --overwrite to"
                        " start again"
                    )
            self._save(checkpoint, length)  # before any request: the folder is writable
            handle.truncate(length)  # drop whatever was written after the last checkpoint
            handle.seek(length)
        except BaseException:
            handle.close()
            raise
        return checkpoint, handle

    def _load(self) -> tuple[Checkpoint, int] | None:
        try:
            raw = self.checkpoint_file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = loads(raw)
            return Checkpoint.from_json(data), int(data["output_bytes"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequestError(
                f"{self.checkpoint_file} is damaged ({exc}): use --overwrite to start again"
            ) from None

    def _save(self, checkpoint: Checkpoint, length: int) -> None:
        data = dumps({**checkpoint.to_json(), "output_bytes": length})
        folder = self.checkpoint_file.parent
        fd, temp = tempfile.mkstemp(prefix=self.checkpoint_file.name, suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.checkpoint_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def write_page(self, page: Page) -> None:
        """Append, flush and fsync the lines, then replace the checkpoint atomically."""
        if page.items:
            self._file.write(_lines(page))
            self._file.flush()
            os.fsync(self._file.fileno())
        self.checkpoint.advance(page)
        self._save(self.checkpoint, self._file.tell())

    def close(self) -> None:
        """Close the file (its lock goes with it)."""
        self._file.close()


class JsonlSink(ThreadedSink):
    """A JSONL file with ``FILE.checkpoint.json`` beside it, written off the event loop."""

    @classmethod
    async def open(cls, path: Path, query: SearchQuery, *, overwrite: bool = False) -> JsonlSink:
        """Open (or resume) ``path``; refusals raise ``InvalidRequestError``."""
        return await cls.start(lambda: JsonlFile(path, query, overwrite=overwrite))
