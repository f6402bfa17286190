"""Streaming one piece of content to disk: chunked, resumable with ``Range``, length-checked.

A download to a path writes ``<path>.part`` and renames it to ``<path>`` once complete and
verified, so ``<path>`` is never a partial file; a ``.part`` left by an interrupted run is
continued with ``Range: bytes=N-``. Every attempt goes through the session (one token, one
rate budget, the same retry policy as search); a body cut short is continued, not restarted.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
from attrs import frozen

from ..errors import APIStatusError, InvalidRequestError, ResponseValidationError
from ..http.session import Session, path_segment

__all__ = [
    "CHUNK_SIZE",
    "Destination",
    "DownloadResult",
    "content_url_path",
    "download",
    "part_path",
]

CHUNK_SIZE: Final = 256 * 1024
_CONTENT_RANGE: Final = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)

Destination = str | os.PathLike[str] | IO[bytes]


@frozen
class DownloadResult:
    """What one download wrote: ``path`` (None for a file object), size, SHA-256 (hex)."""

    path: Path | None
    size: int
    sha256: str
    resumed_from: int = 0
    attempts: int = 1


def content_url_path(guid: str, content_key: str) -> str:
    """``/interactions/{guid}/content/{contentKey}``, each segment percent-encoded."""
    return f"/interactions/{path_segment(guid)}/content/{path_segment(content_key)}"


def part_path(path: Path) -> Path:
    """Where a download to ``path`` is written until it is complete."""
    return path.with_name(path.name + ".part")


class _Sink:
    """The bytes written so far and their hash; rolls back to a mark or starts over."""

    def __init__(self, file: IO[bytes], *, rewind_to: int | None) -> None:
        self.file = file
        self.size = 0
        self.digest = hashlib.sha256()
        self._rewind_to = rewind_to

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)

    def mark(self) -> tuple[int, Any]:
        return self.size, self.digest.copy()

    def rollback(self, mark: tuple[int, Any]) -> None:
        if mark[0] == self.size:
            return
        if self._rewind_to is None:
            raise ResponseValidationError(
                "the answer must be discarded, but the destination cannot be rewound"
            )
        self.file.seek(self._rewind_to + mark[0])
        self.file.truncate()
        self.size, self.digest = mark[0], mark[1].copy()

    def restart(self) -> None:
        self.rollback((0, hashlib.sha256()))


def _hash_prefix(path: Path) -> tuple[int, Any]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest


def _range_start(resp: aiohttp.ClientResponse) -> tuple[int, int | None]:
    """Where the body starts in the content and the content's total size (if stated)."""
    if resp.status != 206:
        return 0, resp.content_length
    match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    if match is None:
        raise ResponseValidationError("a 206 answer without a usable Content-Range", transient=True)
    first, _, total = match.groups()
    return int(first), None if total == "*" else int(total)


async def download(
    session: Session,
    guid: str,
    content_key: str,
    destination: Destination,
    *,
    expected_length: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_bytes: Callable[[int], None] | None = None,
) -> DownloadResult:
    """Stream ``GET /interactions/{guid}/content/{content_key}`` to ``destination``.

    ``destination`` is a path (written through ``<path>.part``, continued if present) or a
    writable binary file (written from its current position). ``expected_length`` (the search
    item's ``contentLength``) is checked: a mismatch is retried, then raised as
    ``ResponseValidationError``. ``on_bytes`` is called with the size of each chunk written
    (negative when a partial file is discarded). A 404 raises ``NotFoundError``.
    """
    if not isinstance(guid, str) or not guid.strip():
        raise InvalidRequestError("guid must be a non-empty string")
    if not isinstance(content_key, str) or not content_key:
        raise InvalidRequestError("content_key must be a non-empty string")
    if expected_length is not None and expected_length < 0:
        raise InvalidRequestError("expected_length must not be negative")
    notify = on_bytes or (lambda n: None)
    transfer = _Transfer(
        session, content_url_path(guid, content_key), expected_length, chunk_size, notify
    )
    if not isinstance(destination, (str, os.PathLike)):
        rewind = destination.tell() if destination.seekable() else None
        sink = _Sink(destination, rewind_to=rewind)
        attempts = await transfer.fill(sink)
        return DownloadResult(None, sink.size, sink.digest.hexdigest(), 0, attempts)

    path = Path(destination)
    part = part_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    file = part.open("ab")
    sink = _Sink(file, rewind_to=0)
    try:
        with file:
            if file.tell():
                sink.size, sink.digest = await asyncio.to_thread(_hash_prefix, part)
            resumed = sink.size
            if expected_length is not None and resumed > expected_length:
                sink.restart()  # longer than the content: not a prefix of it
                notify(-resumed)
                resumed = 0
            attempts = await transfer.fill(sink)
    except BaseException:
        if not sink.size:  # nothing worth continuing: leave no empty .part behind
            part.unlink(missing_ok=True)
        raise
    os.replace(part, path)
    return DownloadResult(path, sink.size, sink.digest.hexdigest(), resumed, attempts)


@frozen
class _Transfer:
    """One piece of content to fetch: where, how long, in what chunks, whom to tell of bytes."""

    session: Session
    url_path: str
    expected: int | None
    chunk_size: int
    notify: Callable[[int], None]

    async def fill(self, sink: _Sink) -> int:
        """Fill ``sink`` with the content; returns the number of requests made."""
        attempts = 0
        if self.expected is not None and sink.size == self.expected:
            return attempts  # a complete .part left by a run killed before the rename
        async for attempt in self.session.retrying():
            with attempt:
                attempts += 1
                await self._attempt(sink)
        return attempts

    async def _attempt(self, sink: _Sink) -> None:
        """One request: continue from ``sink.size``, then check the total length.

        A body cut off mid-way (a dropped connection) is kept and continued by the next attempt;
        an answer that ends normally but with the wrong length is not this content (a gateway's
        page, say) and is discarded.
        """
        headers = {"Range": f"bytes={sink.size}-"} if sink.size else {}
        mark = sink.mark()
        total: int | None = None
        try:
            async with self.session.stream(self.url_path, headers) as resp:
                first, total = _range_start(resp)
                if self.expected is not None and total is not None and total != self.expected:
                    raise ResponseValidationError(
                        f"content length mismatch: the server offers {total} bytes,"
                        f" the search item says {self.expected}",
                        transient=True,
                    )
                if first != sink.size:  # a 200 to a Range request: the whole content again
                    if first != 0:
                        raise ResponseValidationError(
                            f"asked for bytes from {sink.size}, got bytes from {first}",
                            transient=True,
                        )
                    self.notify(-sink.size)
                    sink.restart()
                    mark = sink.mark()
                async for chunk in resp.content.iter_chunked(self.chunk_size):
                    sink.write(chunk)
                    self.notify(len(chunk))
        except APIStatusError as exc:
            if exc.status != 416 or not sink.size:
                raise
            self.notify(-sink.size)  # the partial file is not a prefix of this content
            sink.restart()
            raise ResponseValidationError(
                "the server refused the range of a partial file; starting over", transient=True
            ) from exc
        want = self.expected if self.expected is not None else total
        if want is not None and sink.size != want:
            got = sink.size
            self.notify(mark[0] - got)
            sink.rollback(mark)
            raise ResponseValidationError(
                f"content length mismatch: expected {want} bytes, got {got}", transient=True
            )
