"""The sync's progress display: the tally the engine tells page by page, plain lines off a
terminal (none while nothing is under way), bars on one, nothing when quiet."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from attrs import define

from vccasync._http.session import SessionStats
from vccasync._windows import Page, Window
from vccasync.cli._progress import display_for
from vccasync.cli._sync_progress import FeedCounts, SyncTally
from vccasync.content._bulk import BulkProgress
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake._dataset import Dataset
from vccasync.sync import Observed, PassResult, Span, SyncEngine
from vccasync.sync._queue import QueueStatus

from .cli_helpers import Terminal
from .conftest import client_for

ANCHOR = datetime(2025, 1, 2, tzinfo=UTC)
SPEC = DatasetSpec(seed=3, start=ANCHOR - timedelta(days=1), days=1, per_day=300)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture
async def fake(dataset: Dataset) -> AsyncIterator[FakeVccServer]:
    async with FakeVccServer(dataset, FakeConfig()) as server:
        yield server


@define
class Feed:
    """What the display reads of a feed: the bulk counters, the queue's last status."""

    progress: BulkProgress
    status: QueueStatus


def tally(content: Feed | None = None) -> SyncTally:
    ticks = iter(range(0, 10_000, 2))
    counts = FeedCounts(content) if content is not None else None
    return SyncTally(SessionStats(), counts, clock=lambda: float(next(ticks)))


def page(window: Window, *, last: bool, spawned: tuple[Window, ...] = ()) -> Page:
    return Page(window, [], None if last else "next", spawned)


def seen(kind: Any, n: int) -> list[Observed]:
    return [Observed(None, b"", b"", kind) for _ in range(n)]  # type: ignore[arg-type]


START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(days=1))


def test_the_tally_follows_a_pass_and_says_nothing_while_idle(
    capsys: pytest.CaptureFixture[str],
) -> None:
    downloads = BulkProgress()
    feed = Feed(downloads, QueueStatus(0, 0, None, None))
    t = tally(feed)
    assert t.line() == ""  # nothing under way: the plain lines say nothing
    t.pass_began(Span(START, START + timedelta(days=1)), 2)
    sub = Window(START + timedelta(hours=6), START + timedelta(days=1))
    t.page_recorded(page(WINDOW, last=True, spawned=(sub,)), [*seen("new", 2), *seen(None, 1)])
    t.page_recorded(page(sub, last=False), seen("changed", 1))
    downloads.files_done, downloads.files_failed = 3, 1
    feed.status = QueueStatus(3, 1, START, None)
    assert t.line().startswith(
        "vccasync: pass 1 under way: 1/3 windows, 4 interactions (2 new, 1 changed),"
        " queue 3, 3 downloaded, 1 failed, "
    )
    result = PassResult(Span(START, START + timedelta(days=1)), 2, 1, 0, 1, 5, 0, 1.0)
    t.pass_done(result, START)
    assert capsys.readouterr().err == f"vccasync: pass 1: {result.summary()}\n"
    assert t.line().startswith("vccasync: downloads, queue 3,")  # still downloading
    feed.status = QueueStatus(0, 0, None, None)
    assert t.line() == ""


def test_plain_lines_off_a_terminal_and_bars_on_one() -> None:
    t = tally()
    t.pass_began(Span(START, START + timedelta(days=1)), 4)
    t.page_recorded(page(WINDOW, last=True), seen("new", 2))
    stream = io.StringIO()
    with display_for(t, stream, quiet=False, interval=0.001):
        while not stream.getvalue():
            time.sleep(0.001)  # until the display's thread writes its first line
    assert stream.getvalue().startswith("vccasync: pass 1 under way: 1/4 windows, 2 interactions")
    terminal = Terminal()
    with display_for(t, terminal, quiet=False):
        pass
    drawn = terminal.getvalue()
    assert "pass 1" in drawn and "1/4 windows" in drawn and "req/min" in drawn
    quiet = io.StringIO()
    with display_for(t, quiet, quiet=True):
        pass
    assert quiet.getvalue() == ""


async def test_the_engine_tells_its_progress_page_by_page(
    fake: FakeVccServer, dataset: Dataset
) -> None:
    t = SyncTally(SessionStats())
    async with client_for(fake) as vcc:
        engine = SyncEngine(
            vcc, since=SPEC.start, lookback="2d", limit=50, now=lambda: ANCHOR, progress=t,
            observer=t,
        )  # fmt: skip
        changes = [c async for c in engine.run_pass()]
    assert t.passes == 1 and not t.running
    assert t.windows_done == t.windows_total >= 1
    assert t.interactions == t.new == len(changes) == len(dataset.expected(SPEC.start, ANCHOR))
