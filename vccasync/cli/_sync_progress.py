"""Progress of ``vccasync sync`` on stderr: the pass under way, and one line per pass.

:class:`SyncTally` is told by the engine as each pass goes (a
:class:`~vccasync.sync.PassProgress`: windows, pages) and how it ends (a
:class:`~vccasync.sync.PassObserver`: it then says the pass's summary line), and reads the
downloads through :class:`ContentCounts`. The machinery of :func:`.progress.display_for`
draws it: a bar of the pass's windows with its counters on a terminal, else a plain line every
few seconds while a pass or downloads are under way (nothing while it waits for the next pass).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from attrs import define, field
from rich.console import Console, RenderableType

from vccasync._counts import count
from vccasync._http.session import SessionStats
from vccasync._windows import Page
from vccasync.content._bulk import BulkProgress
from vccasync.sync import Observed, PassObserver, PassResult, Span
from vccasync.sync._queue import QueueStatus

from ._common import say
from ._progress import Bars, RateMeter, Stopwatch, labelled_bar

__all__ = ["ContentCounts", "Downloads", "FeedCounts", "Observers", "SyncTally"]


class ContentCounts(Protocol):
    """What the display reads of a sync's downloads (its content queue)."""

    @property
    def queued(self) -> int:
        """Pieces waiting for their download or being downloaded."""

    @property
    def downloaded(self) -> int:
        """Pieces downloaded by this run."""

    @property
    def failed(self) -> int:
        """Downloads of this run that failed (a piece is retried later)."""


class Downloads(Protocol):
    """A sync's downloads as :class:`FeedCounts` reads them (``ContentFeed``)."""

    progress: BulkProgress
    status: QueueStatus


@define
class FeedCounts:
    """:class:`ContentCounts` of a sync's downloads: the store's content queue as the feed
    last read it, and the bulk counters of this run."""

    feed: Downloads

    @property
    def queued(self) -> int:
        return self.feed.status.depth

    @property
    def downloaded(self) -> int:
        return self.feed.progress.files_done

    @property
    def failed(self) -> int:
        return self.feed.progress.files_failed


@define
class SyncTally(Stopwatch):
    """The passes of this run as they go: the pass number, its windows and interactions,
    the downloads (``content``), the request counters. ``budget`` is the client's requests a
    minute (None: no budget)."""

    stats: SessionStats
    content: ContentCounts | None = None
    budget: float | None = None
    passes: int = 0  # passes begun in this run
    running: bool = False
    windows_total: int = 0
    windows_done: int = 0
    interactions: int = 0  # of the pass under way (or the last)
    new: int = 0
    changed: int = 0
    rate: RateMeter = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.rate = RateMeter(self.budget, self.clock)
        self.rate.start(self.stats.requests)

    # -- PassProgress: told by the engine as a pass goes

    def pass_began(self, span: Span, windows: int) -> None:
        self.passes += 1
        self.running = True
        self.windows_total, self.windows_done = windows, 0
        self.interactions = self.new = self.changed = 0

    def page_recorded(self, page: Page, observed: Sequence[Observed]) -> None:
        self.windows_total += len(page.spawned)
        self.windows_done += page.last
        self.interactions += len(observed)
        self.new += sum(1 for seen in observed if seen.kind == "new")
        self.changed += sum(1 for seen in observed if seen.kind == "changed")

    # -- PassObserver: how a pass ends

    def pass_done(self, result: PassResult, now: datetime) -> None:
        """Say the pass's one line."""
        self.running = False
        say(f"vccasync: pass {self.passes}: {result.summary()}")

    def pass_stopped(self, requests: int, rate_limited: int) -> None:
        self.running = False

    # -- what the display shows

    @property
    def busy(self) -> bool:
        """Whether a pass or downloads are under way."""
        return self.running or bool(self.content and self.content.queued)

    def pass_text(self) -> str:
        """``pass 3 under way: 5/12 windows, 1,234 interactions (12 new, 3 changed)``."""
        return (
            f"pass {self.passes} under way: {self.windows_done}/"
            f"{count(self.windows_total, 'window')},"
            f" {count(self.interactions, 'interaction')} ({self.new:,} new,"
            f" {self.changed:,} changed)"
        )

    def content_text(self) -> str:
        """``queue 4, 120 downloaded, 0 failed`` (empty without downloads)."""
        c = self.content
        if c is None:
            return ""
        return f"queue {c.queued:,}, {c.downloaded:,} downloaded, {c.failed:,} failed"

    def line(self) -> str:
        """The one-line form (empty while nothing is under way: no line then)."""
        if not self.busy:
            return ""
        content = self.content_text()
        s = self.stats
        return (
            f"vccasync: {self.pass_text() if self.running else 'downloads'}"
            f"{', ' + content if content else ''}, {self.rate.per_minute(s.requests):.0f}"
            f" req/min, {count(s.retries, 'retry')}, {s.rate_limited} rate-limited,"
            f" {self.elapsed:.0f}s"
        )

    def bars(self, console: Console) -> Bars:
        """The rich form: a bar of the pass's windows, the counters below."""
        return _PassBars(self, console)


class _PassBars(Bars):
    """The windows of the pass under way, and below them the counters, read on each render."""

    def __init__(self, tally: SyncTally, console: Console) -> None:
        self._tally = tally
        super().__init__(*labelled_bar(7), console=console)
        self._task = self.add_task("waiting", total=None, detail="")

    def sync(self) -> None:
        t = self._tally
        detail = f"{t.windows_done}/{count(t.windows_total, 'window')} · {t.interactions:,}"
        detail += "" if t.running else " · done"
        done = t.windows_done if t.running else t.windows_total
        self.update(
            self._task, description=f"pass {t.passes}" if t.passes else "waiting",
            total=max(t.windows_total, 1), completed=done, detail=detail if t.passes else "",
        )  # fmt: skip

    def counters(self) -> str:
        t = self._tally
        s = t.stats
        content = t.content_text().replace(", ", " · ")
        return (
            f"{t.new:,} new · {t.changed:,} changed · {content + ' · ' if content else ''}"
            f"{t.rate.per_minute(s.requests):.0f} req/min · {count(s.retries, 'retry')}"
            f" · {s.rate_limited} rate-limited · {t.elapsed:.0f}s"
        )

    def get_renderables(self) -> Iterable[RenderableType]:
        if self.tasks:  # downloads change between pages: read on every render
            self.sync()
        yield from super().get_renderables()


class Observers:
    """One :class:`~vccasync.sync.PassObserver` telling several (metrics and the display)."""

    def __init__(self, *observers: PassObserver | None) -> None:
        self._observers = [o for o in observers if o is not None]

    def pass_done(self, result: PassResult, now: datetime) -> None:
        for observer in self._observers:
            observer.pass_done(result, now)

    def pass_stopped(self, requests: int, rate_limited: int) -> None:
        for observer in self._observers:
            observer.pass_stopped(requests, rate_limited)
