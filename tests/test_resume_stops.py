"""Exact resume, any number of stops: a search stopped 1, 2 or 3 times, each run resumed from
the checkpoint the last one left, yields every interaction exactly once, whether the server
pages by start, by guid or by the hour of start, ordered or not: backfills into JSONL, SQLite
and PostgreSQL, and sync passes in SQLite and PostgreSQL.

A stop is placed by counting the pages a run has written (never by time): the run breaks off
after its n-th page, as a run killed there would have stored it. On a server paging by hour,
a window split on the strength of the order and fetched ahead can be pending from before its
split while a page that broke the order has already been written; its repair must then not be
handed on before the split page, or a resumed run fetches that span twice.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from vccasync import VccClient
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake.config import ORDERS
from vccasync.query import NO_FILTERS, SearchQuery, make_query
from vccasync.stores.output import open_sink, open_state
from vccasync.sync import SyncEngine
from vccasync.windows import Page

from .cli_helpers import read_output
from .conftest import client_for

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=2)
LIMIT, CONCURRENCY = 25, 6  # small pages, windows fetched ahead: splits, and repairs of them
DATA = generate(DatasetSpec(seed=7, start=START, days=2, per_day=400))
WANT = Counter(i["guid"] for i in DATA.expected(START, END))
_files = itertools.count()
STOPS = st.lists(st.integers(1, 12), min_size=1, max_size=3)  # pages written before each stop

EXAMPLES = settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example is a few runs
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@asynccontextmanager
async def fake_client(order: Any) -> AsyncIterator[VccClient]:
    """A client of a fake paging in ``order``, tokens bound to their query."""
    config = FakeConfig(order=order, bind_tokens=True)
    async with (
        FakeVccServer(DATA, config) as fake,
        client_for(fake, concurrency=CONCURRENCY) as vcc,
    ):
        yield vcc


async def emptied(dsn: str) -> str:
    """``dsn``'s database with no tables (each example starts from an empty store)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    return dsn


async def stored_guids(target: str) -> Counter[str]:
    if not target.startswith("postgresql"):
        return Counter(row["guid"] for row in read_output(Path(target)))
    conn = await asyncpg.connect(target)
    try:
        return Counter(r["guid"] for r in await conn.fetch("SELECT guid FROM interactions"))
    finally:
        await conn.close()


async def backfill(
    vcc: VccClient, target: str, query: SearchQuery, ordered: bool, stops: list[int]
) -> tuple[Counter[str], list[int]]:
    """Run the backfill of ``query`` into ``target`` once per stop (each run stops after so
    many pages), then to its end: every interaction written, and the pages of each run."""
    written: Counter[str] = Counter()
    runs: list[int] = []
    for stop in [*stops, None]:
        async with await open_sink(target, query) as sink:
            pages_written = 0
            search = vcc.search(query, ordered=ordered, plan=sink.checkpoint.plan())
            async with aclosing(search.pages()) as pages:  # type: ignore[type-var]
                async for page in pages:
                    await sink.write(page)
                    written.update(item.guid for item in page.items)
                    pages_written += 1
                    if pages_written == stop:
                        break
            runs.append(pages_written)
        if stop is None:
            assert sink.checkpoint.done and sink.checkpoint.written == sum(WANT.values())
    return written, runs


async def check_backfill(order: Any, ordered: bool, stops: list[int], target: str) -> None:
    """Stopped after so many pages, run after run, then run to its end: each written once
    (a store keyed by guid would hide a repeat: what the runs wrote is counted too)."""
    query = make_query(START, END, limit=LIMIT)
    async with fake_client(order) as vcc:
        written, runs = await backfill(vcc, target, query, ordered, stops)
    assert runs[:-1] == stops  # each stopped run did stop there (nothing ended first)
    repeated = {guid: n for guid, n in written.items() if n > 1}
    assert not repeated, f"{len(repeated)} came twice or more"
    assert written == WANT
    assert await stored_guids(target) == WANT


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
@EXAMPLES
@given(order=st.sampled_from(ORDERS), ordered=st.booleans(), stops=STOPS)
@example(order="hour", ordered=True, stops=[5, 2])  # 44 came twice before the fix
@example(order="hour", ordered=False, stops=[3, 9, 4])
async def test_a_backfill_stopped_and_resumed_yields_each_interaction_once(
    suffix: str, tmp_path_factory: pytest.TempPathFactory, order: Any, ordered: bool,
    stops: list[int],
) -> None:  # fmt: skip
    target = tmp_path_factory.mktemp("stops") / f"out{suffix}"
    await check_backfill(order, ordered, stops, str(target))


@settings(EXAMPLES, max_examples=2)
@given(order=st.sampled_from(ORDERS), ordered=st.booleans(), stops=STOPS)
@example(order="hour", ordered=True, stops=[5, 2])
async def test_a_postgresql_backfill_stopped_and_resumed_yields_each_interaction_once(
    pg_dsn: str, order: Any, ordered: bool, stops: list[int]
) -> None:
    await check_backfill(order, ordered, stops, await emptied(pg_dsn))


class Counting:
    """A sync state that counts what each page recorded: every interaction a pass yields."""

    def __init__(self, state: Any, recorded: Counter[str]) -> None:
        self._state, self.recorded, self.pages = state, recorded, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)

    async def record(self, page: Page, observed: Any) -> None:
        await self._state.record(page, observed)
        self.recorded.update(item.guid for item in page.items)
        self.pages += 1


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> str:
    """Where the sync's state is kept: an SQLite file or a PostgreSQL database."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_dsn"))
    return str(request.getfixturevalue("tmp_path"))


@settings(EXAMPLES, max_examples=3)
@given(order=st.sampled_from(ORDERS), stops=STOPS)
@example(order="hour", stops=[5, 2])
async def test_a_sync_pass_stopped_and_resumed_yields_each_interaction_once(
    store: str, order: Any, stops: list[int]
) -> None:
    """The first pass of a sync, stopped after so many pages, run after run: every
    interaction is recorded once and reported new once, nothing is removed."""
    if store.startswith("postgresql"):
        target = await emptied(store)
    else:  # a new file in the test's folder
        target = str(Path(store) / f"store{next(_files)}.sqlite")
    options: dict[str, Any] = {"since": START, "lookback": "3d", "limit": LIMIT, "now": lambda: END}
    recorded: Counter[str] = Counter()
    new: Counter[str] = Counter()
    async with fake_client(order) as vcc:
        for stop in [*stops, None]:
            async with await open_state(target, NO_FILTERS, LIMIT) as opened:
                state = Counting(opened, recorded)
                engine = SyncEngine(
                    vcc, state, should_stop=lambda s=state, n=stop: s.pages == n, **options
                )
                changes = [change async for change in engine.run_pass()]
            assert {c.kind for c in changes} <= {"new"}
            new.update(c.interaction.guid for c in changes)
            assert engine.stopped == (stop is not None)
            assert stop is None or state.pages == stop
    repeated = {guid: n for guid, n in recorded.items() if n > 1}
    assert not repeated, f"{len(repeated)} came twice or more"
    assert recorded == WANT and new == WANT
