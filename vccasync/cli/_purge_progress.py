"""Progress of a purge on stderr, and its closing line: read live from the purge's counters.

A bar of archive bytes verified and one of deletions on a terminal; otherwise a line every few
seconds (:func:`.progress.display_for`).
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import define
from rich.console import Console, RenderableType

from vccasync._counts import count
from vccasync._http.session import SessionStats
from vccasync.content._bulk import format_size
from vccasync.content._purge import PurgeProgress

from ._progress import Bars, Stopwatch, labelled_bar, request_counts

__all__ = ["PurgeTally"]


@define
class PurgeTally(Stopwatch):
    """What the display shows: the purge counters, the request counters, the clock."""

    progress: PurgeProgress
    stats: SessionStats

    def deletions_per_minute(self) -> float:
        return self.progress.sent * 60.0 / max(self.elapsed, 1e-9)

    def counters(self) -> str:
        p = self.progress
        return (
            f"{count(p.pieces, 'piece')} ({format_size(p.bytes_found)}), {p.files_verified}/"
            f"{count(p.files_to_verify, 'archive file')} verified"
            f" ({format_size(p.bytes_verified)}),"
            f" {p.deleted} deleted, {p.already_gone} already gone, {len(p.kept)} kept,"
            f" {p.failed} failed, {p.unknown} of unknown outcome"
        )

    def line(self) -> str:
        """The one-line form (no bar)."""
        return (
            f"vccasync: {self.progress.phase}: {self.counters()},"
            f" {count(self.stats.requests, 'request')},"
            f" {self.elapsed:.0f}s"
        )

    def checks(self) -> str:
        """The checks the deletions followed, and the batches (empty before any)."""
        p = self.progress
        if not p.checks:
            return ""
        text = (
            f"; {count(p.checks, 'check')} ({p.rechecks} again), the oldest {p.oldest_check:.2f}s"
            f" old when its deletion left (bound {p.max_check_age:g}s)"
        )
        if p.batch_sizes:
            sizes = ", ".join(map(str, p.batch_sizes[:10])) + (
                ", …" if len(p.batch_sizes) > 10 else ""
            )
            text += f", {count(len(p.batch_sizes), 'batch', 'batches')} of {sizes}"
        return text

    def summary(self, outcome: str) -> str:
        """The closing line (a rate only once something was sent)."""
        s = self.stats
        rate = f" ({self.deletions_per_minute():.1f} deletions/min)" if self.progress.sent else ""
        return (
            f"vccasync: {outcome}: {count(self.progress.interactions, 'interaction')},"
            f" {self.counters()}{self.checks()};"
            f" {request_counts(s)},"
            f" {self.elapsed:.1f}s{rate}"
        )

    def bars(self, console: Console) -> Bars:
        """The rich form: verification in bytes, deletions, the counters below."""
        return _PurgeBars(self, console)


class _PurgeBars(Bars):
    def __init__(self, tally: PurgeTally, console: Console) -> None:
        self._tally = tally
        super().__init__(*labelled_bar(6), console=console)
        self._verify = self.add_task("verify", total=None, detail="")
        self._delete = self.add_task("delete", total=None, detail="")

    def sync(self) -> None:
        p = self._tally.progress
        self.update(
            self._verify, total=max(p.files_to_verify, 1), completed=p.files_verified,
            detail=f"{p.files_verified}/{p.files_to_verify} files",
        )  # fmt: skip
        self.update(
            self._delete, total=max(p.to_delete, 1), completed=p.sent,
            detail=f"{p.sent}/{p.to_delete}",
        )  # fmt: skip

    def counters(self) -> str:
        return f"{self._tally.counters()} · {self._tally.elapsed:.0f}s"

    def get_renderables(self) -> Iterable[RenderableType]:
        if self.tasks:
            self.sync()
        yield from super().get_renderables()
