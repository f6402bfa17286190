"""Progress of a bulk content download on stderr: bytes and files, read live from the counters.

A rich display (a bar in bytes and one in files) on a terminal; otherwise a line every few
seconds (the machinery is :func:`.progress.display_for`). Both read
:class:`~vccasync.content._bulk.BulkProgress` and the session's request counters.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import define
from rich.console import Console, RenderableType

from vccasync._counts import count
from vccasync._http.session import SessionStats
from vccasync.content._bulk import BulkProgress

from ._progress import Bars, Stopwatch, labelled_bar, request_counts

__all__ = ["ContentTally"]


@define
class ContentTally(Stopwatch):
    """What the display shows: the bulk counters, the request counters, the clock."""

    progress: BulkProgress
    stats: SessionStats

    def rate(self) -> float:
        """Bytes fetched per second in this run."""
        return self.progress.bytes_fetched / max(self.elapsed, 1e-9)

    def line(self) -> str:
        """The one-line form (no bar)."""
        p, s = self.progress, self.stats
        found = f"{p.files_found}{'+' if p.searching else ''}"
        return (
            f"vccasync: {p.files_finished}/{found} {'file' if found == '1' else 'files'}"
            f" ({p.files_done} downloaded, {p.files_skipped} already complete,"
            f" {p.files_failed} failed), {p.bytes_fetched / 1e6:.1f} MB at"
            f" {self.rate() / 1e6:.1f} MB/s, {count(s.requests, 'request')},"
            f" {count(s.retries, 'retry')},"
            f" {self.elapsed:.0f}s"
        )

    def summary(self, outcome: str) -> str:
        """The closing line."""
        p, s = self.progress, self.stats
        return (
            f"vccasync: {outcome}: {p.summary()}; {request_counts(s)}, {self.elapsed:.1f}s"
            f" ({self.rate() / 1e6:.1f} MB/s, {p.files_done / max(self.elapsed, 1e-9):.1f}"
            " files/s)"
        )

    def bars(self, console: Console) -> Bars:
        """The rich form: a bar in bytes, one in files, the counters below."""
        return _ByteAndFileBars(self, console)


class _ByteAndFileBars(Bars):
    """Bytes and files bars, updated from the tally on every render."""

    def __init__(self, tally: ContentTally, console: Console) -> None:
        self._tally = tally
        super().__init__(*labelled_bar(5), console=console)
        self._bytes = self.add_task("bytes", total=None, detail="")
        self._files = self.add_task("files", total=None, detail="")

    def sync(self) -> None:
        t = self._tally
        p = t.progress
        plus = "+" if p.searching else ""
        self.update(
            self._bytes,
            total=max(p.bytes_found, 1),
            completed=p.bytes_done + p.bytes_skipped,
            detail=f"{(p.bytes_done + p.bytes_skipped) / 1e6:.1f}/{p.bytes_found / 1e6:.1f}"
            f"{plus} MB · {t.rate() / 1e6:.1f} MB/s",
        )
        self.update(
            self._files,
            total=max(p.files_found, 1),
            completed=p.files_finished,
            detail=f"{p.files_finished}/{p.files_found}{plus} files",
        )

    def counters(self) -> str:
        t = self._tally
        p, s = t.progress, t.stats
        return (
            f"{p.files_done} downloaded · {p.files_skipped} already complete · {p.files_failed}"
            f" failed · {count(s.requests, 'request')} · {count(s.retries, 'retry')}"
            f" · {t.elapsed:.0f}s"
        )

    def get_renderables(self) -> Iterable[RenderableType]:
        if self.tasks:  # rich renders once before the bars are added
            self.sync()  # downloads have no refresh after each step: read on every render
        yield from super().get_renderables()
