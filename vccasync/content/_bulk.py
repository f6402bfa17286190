"""Bulk content download: a search feeds download workers through a bounded queue.

Downloads start while the search is still paging; every request (search pages and downloads)
shares the client's one token, rate budget and retry policy. Files go to
``dest/YYYY/MM/DD/<guid>/<safe name>`` (:mod:`vccasync.content._paths`) and are recorded in
``dest/manifest.jsonl`` (:mod:`vccasync.content._manifest`) as they complete.

Each manifest line records the version it archived: the search's ``lastModified`` and
``contentLength``, and the ``ETag``/``Last-Modified`` of the answer the bytes came with.
Rerunning over the same destination resumes: a file whose manifest entry names the version
the search shows now, with its size on disk, is skipped; a ``.part`` is continued only when
it holds that version (:mod:`vccasync.content._download`); everything else is fetched,
including a complete file missing from the manifest (a run killed between the rename and the
manifest line: its version is not known) and a file of an older version (replaced once the
new one is complete). A piece of content that cannot be fetched (404, retries exhausted) is
counted as failed and reported, and the others go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Collection
from pathlib import Path
from typing import Final

from attrs import define, field

from .._counts import count
from .._errors import InvalidRequestError, InvalidTypeError, VccError
from .._http.session import Session
from .._instants import format_instant
from .._models import Content, Interaction
from ._download import DownloadResult, download
from ._manifest import MANIFEST_NAME, Manifest, ManifestEntry
from ._paths import content_path

__all__ = [
    "BulkProgress",
    "Failure",
    "PieceDone",
    "download_all",
    "format_size",
]

MAX_FAILURES_KEPT: Final = 100
PieceDone = Callable[[str, str, BaseException | None], None]
"""Told how each piece ended: ``(guid, content_key, error)``, error None when it is on disk
(downloaded, or already complete)."""


@define(frozen=True)
class Failure:
    """A piece of content that could not be downloaded."""

    guid: str
    content_key: str
    error: str


@define
class BulkProgress:
    """Counters of a bulk download, updated as it runs (a progress display polls them)."""

    interactions: int = 0
    files_found: int = 0
    bytes_found: int = 0
    files_done: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    bytes_done: int = 0
    bytes_skipped: int = 0
    bytes_fetched: int = 0
    searching: bool = True
    failures: list[Failure] = field(factory=list)
    missing: set[tuple[str, str]] = field(factory=set)
    """(guid, content key) of every piece whose last download failed (none kept since)."""

    @property
    def files_finished(self) -> int:
        """Files done, skipped or failed."""
        return self.files_done + self.files_skipped + self.files_failed

    def summary(self) -> str:
        """One line: what was found, fetched, skipped and failed."""
        return (
            f"{count(self.interactions, 'interaction')}, {count(self.files_found, 'file')}"
            f" ({format_size(self.bytes_found)}): {self.files_done} downloaded"
            f" ({format_size(self.bytes_fetched)} transferred), {self.files_skipped} already"
            f" complete, {self.files_failed} failed"
        )


def format_size(n: int) -> str:
    """A byte count for people: 512 B, 1.2 MB (decimal units)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


@define(frozen=True)
class _Job:
    interaction: Interaction
    content: Content
    path: Path


def _size_on_disk(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


class _Pipeline:
    def __init__(
        self,
        session: Session,
        dest: Path,
        progress: BulkProgress,
        manifest: Manifest,
        on_piece: PieceDone | None = None,
    ) -> None:
        self.on_piece = on_piece
        self.session = session
        self.dest = dest
        self.progress = progress
        self.manifest = manifest
        self.busy: set[Path] = set()

    async def worker(self, queue: asyncio.Queue[_Job | None]) -> None:
        while (job := await queue.get()) is not None:
            await self.run(job)

    async def run(self, job: _Job) -> None:
        progress, path = self.progress, job.path
        guid, key = job.interaction.guid, job.content.content_key
        expected = job.content.content_length
        if path in self.busy:  # the same content listed twice: one download is enough
            progress.files_found -= 1
            progress.bytes_found -= expected or 0
            return
        self.busy.add(path)
        try:
            entry = self.manifest.get(guid, key)
            size = await asyncio.to_thread(_size_on_disk, path)
            rel = path.relative_to(self.dest).as_posix()
            if entry is not None and entry.describes(job.content, rel, size):
                progress.missing.discard((guid, key))
                progress.files_skipped += 1
                progress.bytes_skipped += entry.bytes
                if self.on_piece is not None:
                    self.on_piece(guid, key, None)
                return
            await self.fetch(job, rel)
        finally:
            self.busy.discard(path)

    async def fetch(self, job: _Job, rel: str) -> None:
        progress = self.progress
        written = 0

        def on_bytes(n: int) -> None:
            nonlocal written
            written += n
            progress.bytes_done += n
            progress.bytes_fetched += max(0, n)

        try:
            result = await download(
                self.session,
                job.interaction.guid,
                job.content.content_key,
                job.path,
                expected_length=job.content.content_length,
                last_modified=_text(job.content),
                on_bytes=on_bytes,
            )
        except (VccError, OSError) as exc:
            progress.bytes_done -= written
            self.fail(job.interaction.guid, job.content.content_key, str(exc))
            if self.on_piece is not None:
                self.on_piece(job.interaction.guid, job.content.content_key, exc)
            return
        progress.bytes_done += result.resumed_from
        self.record(job, rel, result)
        progress.files_done += 1
        if self.on_piece is not None:
            self.on_piece(job.interaction.guid, job.content.content_key, None)

    def fail(self, guid: str, content_key: str, error: str) -> None:
        self.progress.files_failed += 1
        self.progress.missing.add((guid, content_key))
        if len(self.progress.failures) < MAX_FAILURES_KEPT:
            self.progress.failures.append(Failure(guid, content_key, error))

    def record(self, job: _Job, rel: str, result: DownloadResult) -> None:
        self.progress.missing.discard((job.interaction.guid, job.content.content_key))
        self.manifest.add(
            ManifestEntry(
                guid=job.interaction.guid,
                content_key=job.content.content_key,
                type=str(job.content.type),
                content_type=job.content.content_type,
                start=format_instant(job.interaction.start),
                path=rel,
                bytes=result.size,
                sha256=result.sha256,
                last_modified=_text(job.content),
                content_length=job.content.content_length,
                etag=result.etag,
                http_last_modified=result.http_last_modified,
            )
        )


def _text(piece: Content) -> str | None:
    """The piece's ``lastModified`` as the API writes it."""
    return None if piece.last_modified is None else format_instant(piece.last_modified)


async def download_all(
    session: Session,
    interactions: AsyncIterable[Interaction],
    dest: str | Path,
    *,
    types: Collection[str] | None = None,
    workers: int = 4,
    progress: BulkProgress | None = None,
    manifest: Manifest | None = None,
    on_piece: PieceDone | None = None,
) -> BulkProgress:
    """Download every piece of content of ``interactions`` (of ``types``, if given) to ``dest``.

    ``workers`` downloads run at once, fed while ``interactions`` is still being iterated.
    Returns the counters (also updated live in ``progress`` when given). Errors of the search
    itself propagate; a piece of content that fails is counted in ``files_failed``.
    ``manifest``: ``dest``'s manifest, already loaded (shared with the caller), else loaded here.
    ``on_piece`` is told how each piece ended (:data:`PieceDone`).
    """
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise InvalidTypeError(f"workers must be a whole number, got {workers!r}")
    if workers < 1:
        raise InvalidRequestError(f"workers must be at least 1, got {workers}")
    if types is not None and (isinstance(types, str) or not all(isinstance(t, str) for t in types)):
        raise InvalidTypeError("types must be a collection of content type names")
    root = Path(dest)
    progress = progress if progress is not None else BulkProgress()
    wanted = None if types is None else frozenset(types)
    if manifest is None:
        manifest = await asyncio.to_thread(Manifest.load, root / MANIFEST_NAME)
    pipeline = _Pipeline(session, root, progress, manifest, on_piece)
    queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=2 * workers)
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(pipeline.worker(queue))
            try:
                async for interaction in interactions:
                    progress.interactions += 1
                    for piece in interaction.content:
                        if wanted is not None and str(piece.type) not in wanted:
                            continue
                        progress.files_found += 1
                        progress.bytes_found += piece.content_length or 0
                        if not piece.content_key:
                            pipeline.fail(interaction.guid, "", "the API listed an empty key")
                            continue
                        path = content_path(
                            root,
                            interaction.start,
                            interaction.guid,
                            piece.content_key,
                            piece.content_type,
                        )
                        await queue.put(_Job(interaction, piece, path))
            finally:
                progress.searching = False
            for _ in range(workers):
                await queue.put(None)
    except BaseExceptionGroup as group_error:
        # a search failure (or a bug) stops everything: raise the first cause plainly
        raise group_error.exceptions[0] from None
    finally:
        manifest.close()
    return progress
