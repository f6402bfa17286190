"""Progress on stderr: a rich display on a terminal, a line every few seconds else.

The machinery (:func:`display_for`) serves any :class:`Readout`; :class:`Tally` is the
backfill's (``vccasync interactions``), ``content_progress.ContentTally`` the downloads'.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol, TextIO

from attrs import Factory, define, field
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from vccasync._counts import count
from vccasync._http.session import SessionStats
from vccasync._windows import Page
from vccasync.stores._checkpoint import Checkpoint

__all__ = [
    "Bars",
    "Display",
    "RateMeter",
    "Readout",
    "Stopwatch",
    "Tally",
    "display_for",
    "labelled_bar",
    "request_counts",
    "summary",
]

LINE_INTERVAL = 5.0  # seconds between lines when stderr is not a terminal
RATE_SPAN = 60.0  # seconds of requests the shown rate is measured over


@define
class RateMeter:
    """Requests a minute over the last minute (over the run so far during its first), from a
    counter read now and then; never above ``budget``, which the client enforces (a figure
    above it would be the first request's free start, or answers arriving bunched)."""

    budget: float | None
    clock: Callable[[], float] = time.monotonic
    _samples: deque[tuple[float, int]] = field(factory=deque, init=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False)  # displays read in threads

    def start(self, count: int) -> None:
        """The counter at the start of the run."""
        self._samples.append((self.clock(), count))

    def per_minute(self, count: int) -> float:
        """The rate, with ``count`` the counter now."""
        with self._lock:
            return self._per_minute(count, self.clock())

    def _per_minute(self, count: int, now: float) -> float:
        samples = self._samples
        samples.append((now, count))
        while len(samples) > 2 and samples[1][0] <= now - RATE_SPAN:
            samples.popleft()  # the oldest kept is the last one at least a span ago
        then, first = samples[0]
        before = float(first)
        span = min(now - then, RATE_SPAN)
        if span <= 0:
            return 0.0
        if now - then > RATE_SPAN:  # the counter at exactly a span ago, interpolated
            (t0, n0), (t1, n1) = samples[0], samples[1]
            before = n0 + (n1 - n0) * (now - RATE_SPAN - t0) / (t1 - t0)
        rate = (count - before) * 60.0 / span
        return min(rate, self.budget) if self.budget else rate


@define
class Stopwatch:
    """What every display's counters share: a clock and the seconds since they started."""

    clock: Callable[[], float] = field(default=time.monotonic, kw_only=True)
    started: float = field(
        default=Factory(lambda self: self.clock(), takes_self=True), kw_only=True
    )

    @property
    def elapsed(self) -> float:
        """Seconds since the display started."""
        return self.clock() - self.started


@define
class Tally(Stopwatch):
    """What a display shows, read live: the checkpoint, the request counters, the clock.
    ``budget`` is the client's requests a minute (None: no budget)."""

    checkpoint: Checkpoint
    stats: SessionStats
    budget: float | None = None
    written_before: int = 0
    partial: float = 0.0  # fraction of the window in progress that is written
    rate: RateMeter = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.written_before = self.checkpoint.written
        self.rate = RateMeter(self.budget, self.clock)
        self.rate.start(self.stats.requests)

    def advance(self, page: Page) -> None:
        """Account for a written page (the share of its window that the page reaches)."""
        if page.last:
            self.partial = 0.0
            return
        span = (page.window.end - page.window.start).total_seconds()
        if page.items and span > 0:
            done = (page.items[-1].start - page.window.start).total_seconds()
            self.partial = min(max(done / span, 0.0), 0.999)

    @property
    def per_minute(self) -> float:
        """Requests a minute over the last minute, at most the budget."""
        return self.rate.per_minute(self.stats.requests)

    @property
    def completed(self) -> float:
        """Windows done, counting the one in progress by the share already written."""
        return self.checkpoint.windows_done + self.partial

    def line(self) -> str:
        """The one-line form (no bar)."""
        c, s = self.checkpoint, self.stats
        return (
            f"vccasync: {c.windows_done}/{count(c.windows_total, 'window')},"
            f" {count(c.written, 'interaction')}, {self.per_minute:.0f} req/min,"
            f" {count(s.retries, 'retry')}, {s.rate_limited} rate-limited,"
            f" {self.elapsed:.0f}s"
        )

    def bars(self, console: Console) -> Bars:
        """The rich form: a bar of windows with ETA, the counters below."""
        return _WindowBars(self, console)


def summary(tally: Tally, target: str, outcome: str) -> str:
    """The closing line: interactions, requests, retries, wall time."""
    c, s = tally.checkpoint, tally.stats
    new = c.written - tally.written_before
    resumed = f", {new:,} this run" if tally.written_before else ""
    return (
        f"vccasync: {outcome}: {count(c.written, 'interaction')} in {target}{resumed}"
        f" ({c.windows_done}/{count(c.windows_total, 'window')}), {request_counts(s)},"
        f" {tally.elapsed:.1f}s"
    )


def request_counts(stats: SessionStats) -> str:
    """Requests, retries and 429s, as the closing lines say them."""
    return (
        f"{count(stats.requests, 'request')}, {count(stats.retries, 'retry')},"
        f" {stats.rate_limited} rate-limited"
    )


def labelled_bar(width: int) -> tuple[ProgressColumn, ...]:
    """The columns of named bars: the name right-aligned in ``width``, the bar, its detail."""
    return (
        TextColumn(f"{{task.description:>{width}}}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[detail]}"),
    )


class Readout(Protocol):
    """What a display reads: a one-line form (empty: nothing to tell now, no line), and a
    rich one for a terminal."""

    def line(self) -> str: ...

    def bars(self, console: Console) -> Bars: ...


class Bars(Progress, ABC):
    """A rich display: the bars, and below them a line of counters, both read from a tally."""

    def __init__(self, *columns: str | ProgressColumn, console: Console) -> None:
        super().__init__(*columns, console=console, refresh_per_second=4, expand=True)

    @abstractmethod
    def sync(self) -> None:
        """Bring the bars up to date with the tally."""

    @abstractmethod
    def counters(self) -> str:
        """The line below the bars."""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield Text(self.counters(), style="cyan", no_wrap=True, overflow="ellipsis")


class _WindowBars(Bars):
    """A bar with windows and ETA, and below it the counters, read live from the tally."""

    def __init__(self, tally: Tally, console: Console) -> None:
        self._tally = tally
        super().__init__(
            BarColumn(bar_width=None),
            TextColumn("{task.fields[windows]} windows"),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self.add_task(
            "backfill", total=tally.checkpoint.windows_total, windows=self._windows()
        )

    def _windows(self) -> str:
        c = self._tally.checkpoint
        return f"{c.windows_done}/{c.windows_total}"

    def sync(self) -> None:
        t = self._tally
        self.update(
            self._task, total=t.checkpoint.windows_total, completed=t.completed,
            windows=self._windows(),
        )  # fmt: skip

    def counters(self) -> str:
        t = self._tally
        c, s = t.checkpoint, t.stats
        return (
            f"{count(c.written, 'interaction')} · {t.per_minute:.0f} req/min"
            f" · {count(s.retries, 'retry')}"
            f" · {s.rate_limited} rate-limited · {t.elapsed:.0f}s"
        )


class Display(Protocol):
    """A progress display, used as ``with display:``; ``refresh`` after each step."""

    def __enter__(self) -> Display: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def refresh(self) -> None: ...


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def refresh(self) -> None:
        return None


class _Rich:
    """The rich display (terminal only)."""

    def __init__(self, readout: Readout, stream: TextIO) -> None:
        self._bars = readout.bars(Console(file=stream))
        self.refresh()

    def __enter__(self) -> _Rich:
        self._bars.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.refresh()
        self._bars.stop()

    def refresh(self) -> None:
        self._bars.sync()


class _Lines:
    """A short line every ``interval`` seconds (stderr is a file or a pipe)."""

    def __init__(self, readout: Readout, stream: TextIO, interval: float) -> None:
        self._readout, self._stream, self._interval = readout, stream, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vccasync-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if line := self._readout.line():  # empty: nothing under way to tell
                print(line, file=self._stream, flush=True)

    def __enter__(self) -> _Lines:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def refresh(self) -> None:
        return None


def display_for(
    readout: Readout, stream: TextIO, *, quiet: bool, interval: float = LINE_INTERVAL
) -> Display:
    """The display that suits ``stream``: none when quiet, bars on a terminal, else lines."""
    if quiet:
        return _Quiet()
    if stream.isatty():
        return _Rich(readout, stream)
    return _Lines(readout, stream, interval)
