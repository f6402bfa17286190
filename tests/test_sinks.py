"""Checkpoint state and the JSONL/SQLite sinks, without a network."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync import InvalidRequestError, Page, Window, to_api
from vccasync._converter import structure_interaction
from vccasync._http.session import SessionStats
from vccasync._query import make_query
from vccasync._windows import Repair
from vccasync.cli._progress import Tally, display_for, summary
from vccasync.fake import DatasetSpec, generate
from vccasync.stores._checkpoint import Checkpoint, query_identity
from vccasync.stores._jsonl import JsonlSink, StdoutSink, checkpoint_path
from vccasync.stores._output import open_sink
from vccasync.stores._sqlite import SqliteFile, SqliteSink

from .cli_helpers import Terminal

START = datetime(2025, 1, 1, tzinfo=UTC)
QUERY = make_query(START, START + timedelta(days=20))


@pytest.fixture(scope="module")
def items() -> list[Any]:
    data = generate(DatasetSpec(seed=3, start=START, days=3, per_day=40))
    return [structure_interaction(i) for i in data.expected(START, START + timedelta(days=3))]


def pages(items: list[Any]) -> list[Page]:
    """The query's first window in three pages, then the other windows, each in one page."""
    first, *rest = Checkpoint.start(QUERY).plan()
    window = first[0]
    return [
        Page(window, items[:10], "t1"),
        Page(window, items[10:25], "t2"),
        Page(window, items[25:40], None),
        *(Page(w, [], None) for w, _ in rest),
    ]


# --- checkpoint -------------------------------------------------------------------------


def test_checkpoint_follows_pages_and_spawned_windows(items: list[Any]) -> None:
    state = Checkpoint.start(QUERY)
    assert (state.windows_total, state.windows_done, state.done) == (3, 0, False)
    windows = [w for w, _ in state.plan()]
    assert windows == sorted(windows) and windows[0].start == START
    state.advance(Page(windows[0], items[:5], "tok"))
    assert state.plan()[0] == (windows[0], "tok") and state.written == 5
    half = Window(windows[1].start + timedelta(days=3), windows[1].end)
    state.advance(Page(windows[1], items[5:7], None, spawned=(half,)))
    assert [w for w, _ in state.plan()] == [windows[0], half, windows[2]]
    assert (state.windows_total, state.windows_done) == (4, 1)
    with pytest.raises(ValueError, match="not pending"):
        state.advance(Page(windows[1], [], None))
    again = Checkpoint.from_json(json.loads(json.dumps(state.to_json())))
    assert again == state


def test_checkpoint_keeps_the_repairs_of_split_windows_until_re_covered() -> None:
    """A split's repair survives a restart while the order holds; once a page breaks the
    order the repairs run as pending windows, each forgotten when it ends."""
    state = Checkpoint.start(QUERY)
    first, second = (w for w, _ in state.plan()[:2])
    cut = first.start + timedelta(hours=5)
    sub = Window(cut, first.end)
    repair = Repair.of(first, cut, "tok", ["g1"])
    state.advance(Page(first, [], None, spawned=(sub,), repair=repair))
    later = Repair.of(second, second.start + timedelta(hours=1), "t2", [])
    state.advance(
        Page(second, [], None, spawned=(Window(later.window.end, second.end),), repair=later)
    )
    plan = Checkpoint.from_json(json.loads(json.dumps(state.to_json()))).plan()
    assert plan.repairs == (repair, later) and not plan.order_broken
    assert repair.window not in [w for w, _ in plan]  # not fetched unless the order breaks
    state.advance(Page(sub, [], "t3", spawned=(repair.window, later.window)))  # out of order
    plan = Checkpoint.from_json(json.loads(json.dumps(state.to_json()))).plan()
    assert plan.order_broken and plan.repairs == (repair, later)
    assert {repair.window, later.window} <= {w for w, _ in plan}
    state.advance(Page(repair.window, [], None))
    assert state.plan().repairs == (later,)
    old = {**state.to_json(), "format": 1}  # written before repairs were kept
    del old["repairs"], old["order_broken"]
    assert Checkpoint.from_json(old).plan().repairs == ()


def test_a_repair_spawned_before_its_split_page_is_written_is_kept_while_it_runs() -> None:
    """In its place in the output a split page may come after the page that broke the order
    and spawned its repair: the repair is then pending already, and ends like any repair."""
    state = Checkpoint.start(QUERY)
    first, second = (w for w, _ in state.plan()[:2])
    cut = first.start + timedelta(hours=5)
    repair = Repair.of(first, cut, "tok", ["g1"])
    state.advance(Page(second, [], "t", spawned=(repair.window,)))
    state.advance(Page(first, [], None, spawned=(Window(cut, first.end),), repair=repair))
    assert state.order_broken and state.plan().repairs == (repair,)
    state.advance(Page(repair.window, [], None))
    assert state.plan().repairs == () and state.order_broken
    third = state.plan()[-1][0]  # its repair ran and ended before its split page came
    gone = Repair.of(third, third.start + timedelta(hours=1), "t4", [])
    state.advance(Page(second, [], None, spawned=(gone.window,)))
    state.advance(Page(gone.window, [], None))
    state.advance(Page(third, [], None, spawned=(Window(gone.window.end, third.end),), repair=gone))
    assert state.plan().repairs == ()


def test_checkpoint_identity_covers_range_filters_and_page_size() -> None:
    state = Checkpoint.start(QUERY)
    assert state.matches(make_query(START, START + timedelta(days=20)))
    assert not state.matches(make_query(START, START + timedelta(days=21)))
    assert not state.matches(make_query(START, START + timedelta(days=20), direction="inbound"))
    assert not state.matches(make_query(START, START + timedelta(days=20), limit=10))
    assert query_identity(make_query(START, START, connect_from="01"))["connect_from"] == "01"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"format": 99},
        {"format": 1, "query": {}, "pending": {"nonsense": None}, "windows_total": 1, "written": 0},
        [],
    ],
)
def test_damaged_checkpoint_is_refused(data: Any) -> None:
    with pytest.raises(InvalidRequestError, match="checkpoint is not readable"):
        Checkpoint.from_json(data)


# --- JSONL --------------------------------------------------------------------------------


async def test_jsonl_resume_cuts_back_to_the_checkpoint(tmp_path: Path, items: list[Any]) -> None:
    out = tmp_path / "out.jsonl"
    first, second, *rest = pages(items)
    sink = await JsonlSink.open(out, QUERY)
    await sink.write(first)
    await sink.close()
    with out.open("ab") as torn:  # a crash after writing lines, before the checkpoint
        torn.write(b"".join(json.dumps(to_api(i)).encode() + b"\n" for i in second.items))
        torn.write(b'{"guid": "half a li')
    sink = await JsonlSink.open(out, QUERY)
    assert sink.checkpoint.written == 10 and out.stat().st_size == len(out.read_bytes())
    assert len(out.read_bytes().splitlines()) == 10
    for page in (second, *rest):
        await sink.write(page)
    await sink.close()
    lines = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert lines == [to_api(i) for i in items[:40]]
    stored = json.loads(checkpoint_path(out).read_bytes())
    assert stored["pending"] == {} and stored["output_bytes"] == out.stat().st_size
    async with await JsonlSink.open(out, QUERY) as done:
        assert done.checkpoint.done


async def test_jsonl_refusals(tmp_path: Path, items: list[Any]) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("someone else's\n")
    with pytest.raises(InvalidRequestError, match="not written by vccasync"):
        await JsonlSink.open(out, QUERY)
    sink = await JsonlSink.open(out, QUERY, overwrite=True)
    assert out.stat().st_size == 0
    with pytest.raises(InvalidRequestError, match="another vccasync run"):
        await JsonlSink.open(out, QUERY)
    await sink.write(pages(items)[0])
    await sink.close()
    with pytest.raises(InvalidRequestError, match="different backfill"):
        await JsonlSink.open(out, make_query(START, START + timedelta(days=2)))
    out.write_bytes(b"")
    with pytest.raises(InvalidRequestError, match="shorter"):
        await JsonlSink.open(out, QUERY)
    checkpoint_path(out).write_text("{not json")
    with pytest.raises(InvalidRequestError, match="damaged"):
        await JsonlSink.open(out, QUERY)


async def test_stdout_sink_writes_lines() -> None:
    stream = io.BytesIO()
    sink = await StdoutSink.open(QUERY, stream)
    window = sink.checkpoint.plan()[0][0]
    await sink.write(Page(window, [], None))
    await sink.close()
    assert stream.getvalue() == b"" and sink.checkpoint.windows_done == 1


async def test_open_sink_by_name(tmp_path: Path) -> None:
    async with await open_sink("-", QUERY) as stdout:
        assert isinstance(stdout, StdoutSink)
    for name, kind in (("a.ndjson", JsonlSink), ("b.sqlite3", SqliteSink), ("c.DB", SqliteSink)):
        sink = await open_sink(str(tmp_path / name), QUERY)
        assert isinstance(sink, kind)
        await sink.close()
    with pytest.raises(InvalidRequestError, match="must end with"):
        await open_sink(str(tmp_path / "d.json"), QUERY)


# --- SQLite -------------------------------------------------------------------------------


async def test_sqlite_rows_and_checkpoint_commit_together(tmp_path: Path, items: list[Any]) -> None:
    out = tmp_path / "out.sqlite"
    first, second, *_ = pages(items)
    sink = await SqliteSink.open(out, QUERY)
    await sink.write(first)
    await sink.close()
    sink = await SqliteSink.open(out, QUERY)
    assert sink.checkpoint.written == 10
    assert sink.checkpoint.plan()[0][1] == "t1"
    await sink.write(second)
    await sink.write(Page(second.window, items[10:25], "t2"))  # the same rows again: upserted
    with sqlite3.connect(out) as db:
        query = "SELECT count(*), count(DISTINCT guid) FROM interactions"
        count, distinct = db.execute(query).fetchone()
        assert count == distinct == 25
        content = db.execute("SELECT count(*) FROM content").fetchone()[0]
        assert content == sum(len(i.content) for i in items[:25])
    await sink.close()


async def test_sqlite_schema_is_plain_sql(tmp_path: Path, items: list[Any]) -> None:
    out = tmp_path / "out.db"
    sink = await SqliteSink.open(out, QUERY)
    for page in pages(items):
        await sink.write(page)
    await sink.close()
    with sqlite3.connect(out) as db:
        first = db.execute("SELECT guid, start FROM interactions ORDER BY start LIMIT 1").fetchone()
        by_type = dict(db.execute("SELECT type, count(*) FROM content GROUP BY type").fetchall())
        agents = db.execute(
            "SELECT count(*) FROM interactions, json_each(handling_agents)"
        ).fetchone()[0]
    earliest = min(items[:40], key=lambda i: (i.start, i.guid))
    assert first[1] == earliest.start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert sum(by_type.values()) == sum(len(i.content) for i in items[:40])
    assert agents == sum(len(i.handling_agents) for i in items[:40])


async def test_sqlite_refusals(tmp_path: Path, items: list[Any]) -> None:
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(InvalidRequestError, match="did not create"):
        await SqliteSink.open(foreign, QUERY)
    await (await SqliteSink.open(foreign, QUERY, overwrite=True)).close()
    with sqlite3.connect(foreign) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "notes" not in tables and "interactions" in tables
    text = tmp_path / "text.sqlite"
    text.write_text("not a database at all, just some text\n" * 50)
    with pytest.raises(InvalidRequestError, match="not an SQLite database"):
        await SqliteSink.open(text, QUERY)
    held = await SqliteSink.open(tmp_path / "held.sqlite", QUERY)
    with pytest.raises(InvalidRequestError, match="another vccasync run"):
        await SqliteSink.open(tmp_path / "held.sqlite", QUERY)
    await held.close()
    with pytest.raises(InvalidRequestError, match="different backfill"):
        await SqliteSink.open(
            tmp_path / "held.sqlite", make_query(START, START + timedelta(days=1))
        )


# --- off the event loop -------------------------------------------------------------------


class Gate:
    """A blocking call held on the writer thread until the test lets it go."""

    def __init__(self, call: Callable[..., Any]) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.call = call

    def __call__(self, *args: Any) -> Any:
        self.entered.set()
        if not self.release.wait(30):
            raise AssertionError("the held call was never released")
        return self.call(*args)


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
async def test_the_loop_runs_while_a_sink_syncs(
    tmp_path: Path, items: list[Any], suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / f"out{suffix}"
    first, second, *_ = pages(items)
    sink = await open_sink(str(out), QUERY)
    if suffix == ".jsonl":
        gate = Gate(os.fsync)
        monkeypatch.setattr(os, "fsync", gate)  # the lines' fsync
    else:
        gate = Gate(SqliteFile._store)
        # inside the page's transaction
        monkeypatch.setattr(SqliteFile, "_store", lambda store, state: gate(store, state))
    ticks, goal, reached = 0, 0, asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if goal and ticks >= goal:
                reached.set()
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    writes = [asyncio.create_task(sink.write(page)) for page in (first, second)]
    await asyncio.to_thread(gate.entered.wait)  # the loop runs while the thread waits
    goal = ticks + 100
    await reached.wait()  # the loop goes on while the writer is held
    assert not any(w.done() for w in writes)
    gate.release.set()
    await asyncio.gather(*writes)
    ticking.cancel()
    await sink.close()
    assert sink.checkpoint.written == 25 and sink.checkpoint.plan()[0][1] == "t2"
    if suffix == ".jsonl":  # written in the order asked
        lines = [json.loads(line) for line in out.read_bytes().splitlines()]
        assert lines == [to_api(i) for i in items[:25]]


async def test_another_page_size_is_another_backfill(tmp_path: Path, items: list[Any]) -> None:
    for name in ("out.jsonl", "out.sqlite"):
        async with await open_sink(str(tmp_path / name), QUERY) as sink:
            await sink.write(pages(items)[0])
        smaller = make_query(QUERY.start, QUERY.end, limit=500)
        with pytest.raises(InvalidRequestError, match=r"different backfill.*limit=1000"):
            await open_sink(str(tmp_path / name), smaller)


# --- progress -----------------------------------------------------------------------------


def test_progress_displays(items: list[Any]) -> None:
    state = Checkpoint.start(QUERY)
    stats = SessionStats(requests=12, retries=2, rate_limited=1)
    tally = Tally(state, stats)
    page = pages(items)[0]
    state.advance(page)
    tally.advance(page)
    assert 0 < tally.completed < 1
    assert "0/3 windows, 10 interactions" in tally.line()
    assert "2 retries, 1 rate-limited" in tally.line()
    line = summary(tally, "out.jsonl", "complete")
    assert line.startswith("vccasync: complete: 10 interactions in out.jsonl (0/3 windows)")
    terminal = Terminal()
    with display_for(tally, terminal, quiet=False) as display:  # rich, on a "terminal"
        display.refresh()
    assert "10 interactions" in terminal.getvalue() and "0/3 windows" in terminal.getvalue()
    piped = io.StringIO()
    with display_for(tally, piped, quiet=False, interval=0.01):
        time.sleep(0.05)
    assert piped.getvalue().startswith("vccasync: 0/3 windows")
    quiet = Terminal()
    with display_for(tally, quiet, quiet=True):
        pass
    assert quiet.getvalue() == ""
