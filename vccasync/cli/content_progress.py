"""Progress of a bulk content download on stderr: bytes and files, read live from the counters.

A rich display (a bar in bytes and one in files) on a terminal; otherwise a line every few
seconds. Both read :class:`~vccasync.bulk.BulkProgress` and the session's request counters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Protocol, TextIO

from attrs import define, field
from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

from vccasync.bulk import BulkProgress
from vccasync.session import SessionStats

__all__ = ["ContentTally", "Display", "content_display"]

LINE_INTERVAL = 5.0


@define
class ContentTally:
    """What the display shows: the bulk counters, the request counters, the clock."""

    progress: BulkProgress
    stats: SessionStats
    started: float = field(factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        """Bytes fetched per second in this run."""
        return self.progress.bytes_fetched / max(self.elapsed, 1e-9)

    def line(self) -> str:
        """The one-line form (no bar)."""
        p, s = self.progress, self.stats
        found = f"{p.files_found}{'+' if p.searching else ''}"
        return (
            f"vccasync: {p.files_finished}/{found} files"
            f" ({p.files_done} downloaded, {p.files_skipped} already complete,"
            f" {p.files_failed} failed), {p.bytes_fetched / 1e6:.1f} MB at"
            f" {self.rate() / 1e6:.1f} MB/s, {s.requests} requests, {s.retries} retries,"
            f" {self.elapsed:.0f}s"
        )

    def summary(self, outcome: str) -> str:
        """The closing line."""
        p, s = self.progress, self.stats
        return (
            f"vccasync: {outcome}: {p.summary()}; {s.requests} requests, {s.retries} retries,"
            f" {s.rate_limited} rate-limited, {self.elapsed:.1f}s"
            f" ({self.rate() / 1e6:.1f} MB/s, {p.files_done / max(self.elapsed, 1e-9):.1f}"
            " files/s)"
        )


class Display(Protocol):
    """A progress display, used as ``with display:``."""

    def __enter__(self) -> Display: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class _Bars(Progress):
    """Bytes and files bars, updated from the tally on every refresh."""

    def __init__(self, tally: ContentTally, console: Console) -> None:
        self._tally = tally
        super().__init__(
            TextColumn("{task.description:>5}"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[detail]}"),
            console=console,
            refresh_per_second=4,
            expand=True,
        )
        self._bytes = self.add_task("bytes", total=None, detail="")
        self._files = self.add_task("files", total=None, detail="")

    def get_renderables(self) -> Iterable[RenderableType]:
        t = self._tally
        p, s = t.progress, t.stats
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
        yield self.make_tasks_table(self.tasks)
        yield Text(
            f"{p.files_done} downloaded · {p.files_skipped} already complete · {p.files_failed}"
            f" failed · {s.requests} requests · {s.retries} retries · {t.elapsed:.0f}s",
            style="cyan",
            no_wrap=True,
            overflow="ellipsis",
        )


class _Bar:
    def __init__(self, tally: ContentTally, stream: TextIO) -> None:
        self._progress = _Bars(tally, Console(file=stream))

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.refresh()
        self._progress.stop()


class _Lines:
    def __init__(self, tally: ContentTally, stream: TextIO, interval: float) -> None:
        self._tally, self._stream, self._interval = tally, stream, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vccasync-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            print(self._tally.line(), file=self._stream, flush=True)

    def __enter__(self) -> _Lines:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def content_display(
    tally: ContentTally, stream: TextIO, *, quiet: bool, interval: float = LINE_INTERVAL
) -> Display:
    """None when quiet, bars on a terminal, else a line every ``interval`` seconds."""
    if quiet:
        return _Quiet()
    if stream.isatty():
        return _Bar(tally, stream)
    return _Lines(tally, stream, interval)
