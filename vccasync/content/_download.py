"""Streaming one piece of content to disk: chunked, resumable with ``Range``, length-checked.

A download to a path writes ``<path>.part`` and renames it to ``<path>`` once complete and
verified, so ``<path>`` is never a partial file. Beside the part, ``<path>.part.json`` names
the version it holds: the search's ``lastModified``/``contentLength`` and the first answer's
``ETag``/``Last-Modified``. A ``.part`` left by an interrupted run is continued with
``Range: bytes=N-`` only when that sidecar names the version asked for now, and then with
``If-Range`` (the first answer's validator): a server holding another version answers 200
with the whole of it, and the part starts over rather than being spliced; a server that
ignores ``If-Range`` is caught too: a 206 whose ``ETag`` or ``Last-Modified`` (whichever it
sends) differs from the part's starts over from byte 0. A part without
a sidecar, or of another version, is discarded. A part already complete is never renamed
without a request: its last byte is asked again, under the same ``If-Range``.

Every attempt goes through the session (one token, one rate budget, the same retry policy as
search); a body cut short is continued, not restarted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
from attrs import define, field, frozen

from .._errors import APIStatusError, InvalidRequestError, ResponseValidationError
from .._http.session import Session, path_segment
from .._tracing import traced_download

__all__ = [
    "CHUNK_SIZE",
    "Destination",
    "DownloadResult",
    "content_url_path",
    "download",
    "part_path",
    "sidecar_path",
]

CHUNK_SIZE: Final = 256 * 1024
_CONTENT_RANGE: Final = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)

Destination = str | os.PathLike[str] | IO[bytes]


@frozen
class DownloadResult:
    """What one download wrote: ``path`` (None for a file object), size, SHA-256 (hex), and
    the ``ETag``/``Last-Modified`` of the answer the content came with (when sent)."""

    path: Path | None
    size: int
    sha256: str
    resumed_from: int = 0
    attempts: int = 1
    etag: str | None = None
    http_last_modified: str | None = None


def content_url_path(guid: str, content_key: str) -> str:
    """``/interactions/{guid}/content/{contentKey}``, each segment percent-encoded."""
    return f"/interactions/{path_segment(guid)}/content/{path_segment(content_key)}"


def part_path(path: Path) -> Path:
    """Where a download to ``path`` is written until it is complete."""
    return path.with_name(path.name + ".part")


def sidecar_path(path: Path) -> Path:
    """Where the version of ``part_path(path)`` is kept."""
    return path.with_name(path.name + ".part.json")


class _Validators:
    """The ``ETag``/``Last-Modified`` of the answer the bytes so far came with."""

    def __init__(self, etag: str | None = None, last_modified: str | None = None) -> None:
        self.etag, self.last_modified = etag, last_modified

    def other_than(self, before: _Validators) -> bool:
        """Whether this answer may be of another version than ``before``'s: a validator both
        name differs (the entity tag or the date, whichever the server sends), or ``before``
        named one and they share none (nothing shows it is the same version)."""
        shared = False
        for mine, theirs in ((self.etag, before.etag), (self.last_modified, before.last_modified)):
            if mine is not None and theirs is not None:
                if mine != theirs:
                    return True
                shared = True
        return not shared and (before.etag, before.last_modified) != (None, None)

    def if_range(self) -> str | None:
        """What to send as ``If-Range``: a strong entity tag, else the date, else nothing."""
        if self.etag is not None and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def _version(last_modified: str | None, length: int | None) -> dict[str, Any]:
    return {"lastModified": last_modified, "contentLength": length}


def _resumable(path: Path, version: dict[str, Any]) -> _Validators | None:
    """The validators of the ``.part`` of ``path`` when it holds ``version``; otherwise the
    part and its sidecar are removed (None). A part already as long as the content loses its
    last byte, to be asked again."""
    part, side = part_path(path), sidecar_path(path)
    try:
        stamp = json.loads(side.read_text(encoding="utf-8"))
        size = part.stat().st_size
    except (OSError, ValueError):
        stamp, size = None, None
    length = version["contentLength"]
    if (
        not isinstance(stamp, dict)
        or size is None
        or {k: stamp.get(k) for k in version} != version
        or (length is not None and size > length)
    ):
        part.unlink(missing_ok=True)
        side.unlink(missing_ok=True)
        return None
    if length is not None and size == length and size:
        with part.open("r+b") as f:
            f.truncate(size - 1)
    etag, date = stamp.get("etag"), stamp.get("httpLastModified")
    return _Validators(
        etag if isinstance(etag, str) else None, date if isinstance(date, str) else None
    )


def _write_sidecar(path: Path, version: dict[str, Any], validators: _Validators) -> None:
    stamp = {**version, "etag": validators.etag, "httpLastModified": validators.last_modified}
    sidecar_path(path).write_text(json.dumps(stamp), encoding="utf-8")


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


@traced_download
async def download(
    session: Session,
    guid: str,
    content_key: str,
    destination: Destination,
    *,
    expected_length: int | None = None,
    last_modified: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_bytes: Callable[[int], None] | None = None,
) -> DownloadResult:
    """Stream ``GET /interactions/{guid}/content/{content_key}`` to ``destination``.

    ``destination`` is a path (written through ``<path>.part``, continued if it holds the
    same version) or a writable binary file (written from its current position).
    ``expected_length`` (the search item's ``contentLength``) is checked: a mismatch is
    retried, then raised as ``ResponseValidationError``; with ``last_modified`` (the item's
    ``lastModified``, as text) it names the version a ``.part`` must hold to be continued.
    ``on_bytes`` is called with the size of each chunk written (negative when a partial file
    is discarded). A 404 raises ``NotFoundError``.
    """
    if not isinstance(guid, str) or not guid.strip():
        raise InvalidRequestError("guid must be a non-empty string")
    if not isinstance(content_key, str) or not content_key:
        raise InvalidRequestError("content_key must be a non-empty string")
    if expected_length is not None and expected_length < 0:
        raise InvalidRequestError("expected_length must not be negative")
    notify = on_bytes or (lambda n: None)
    url_path = content_url_path(guid, content_key)
    if not isinstance(destination, (str, os.PathLike)):
        transfer = _Transfer(session, url_path, expected_length, chunk_size, notify)
        rewind = destination.tell() if destination.seekable() else None
        sink = _Sink(destination, rewind_to=rewind)
        attempts = await transfer.fill(sink)
        found = transfer.validators
        return DownloadResult(
            None, sink.size, sink.digest.hexdigest(), 0, attempts, found.etag, found.last_modified
        )

    path = Path(destination)
    part, version = part_path(path), _version(last_modified, expected_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    known = await asyncio.to_thread(_resumable, path, version)

    def started(validators: _Validators) -> None:  # a small file, written before the body
        _write_sidecar(path, version, validators)

    transfer = _Transfer(
        session, url_path, expected_length, chunk_size, notify, known or _Validators(), started
    )
    file = part.open("ab")
    sink = _Sink(file, rewind_to=0)
    try:
        with file:
            if file.tell():
                sink.size, sink.digest = await asyncio.to_thread(_hash_prefix, part)
            resumed = sink.size
            attempts = await transfer.fill(sink)
    except BaseException:
        if not sink.size:  # nothing worth continuing: leave no empty .part behind
            part.unlink(missing_ok=True)
            sidecar_path(path).unlink(missing_ok=True)
        raise
    os.replace(part, path)
    sidecar_path(path).unlink(missing_ok=True)
    found = transfer.validators
    return DownloadResult(
        path, sink.size, sink.digest.hexdigest(), resumed, attempts, found.etag, found.last_modified
    )


def _nothing(validators: _Validators) -> None:
    return None


@define
class _Transfer:
    """One piece of content to fetch: where, how long, in what chunks, whom to tell of bytes;
    the validators of the answer its bytes so far came with, and whom to tell of a new one."""

    session: Session
    url_path: str
    expected: int | None
    chunk_size: int
    notify: Callable[[int], None]
    validators: _Validators = field(factory=_Validators)
    started: Callable[[_Validators], None] = _nothing

    async def fill(self, sink: _Sink) -> int:
        """Fill ``sink`` with the content; returns the number of requests made."""
        attempts = 0
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
        if sink.size and (validator := self.validators.if_range()) is not None:
            headers["If-Range"] = validator
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
                answer = _Validators(resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
                if first and answer.other_than(self.validators):
                    self.notify(-sink.size)
                    sink.restart()
                    raise ResponseValidationError(
                        "the rest of the content is of another version; starting over",
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
                if first == 0:  # the bytes from here on are of this answer's version
                    self.validators = answer
                    self.started(answer)
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
