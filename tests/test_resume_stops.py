"""Exact resume, any number of stops: a search stopped 1, 2 or 3 times, each run resumed from
the checkpoint the last one left, yields every interaction exactly once, whether the server
pages by start, by guid or by the hour of start, ordered or not: backfills into JSONL, SQLite
and PostgreSQL, and sync passes in SQLite and PostgreSQL.

A stop is placed by counting the pages a run has written (never by time): the run breaks off
after its n-th page, as a run killed there would have stored it. On a server paging by hour,
two things went wrong before: a window split on the strength of the order and fetched ahead
could be pending from before its split while a page that broke the order had already been
written, its repair beside it (a resumed run fetched that span twice); and a run resumed with
few windows left might never see a page out of order, so the splits of earlier runs were
never repaired (what their dropped chains held before the cut was lost).
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
from attrs import frozen
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from vccasync import VccClient
from vccasync._query import NO_FILTERS, SearchQuery, make_query
from vccasync._windows import Page
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake._config import ORDERS
from vccasync.stores._output import open_sink, open_state
from vccasync.sync import SyncEngine

from .cli_helpers import read_output
from .conftest import client_for

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=2)
CONCURRENCY = 6  # windows fetched ahead: splits, and repairs of them
BUDGET = 100_000  # requests a minute: with a budget, windows split by the pace (many, early)
DATA = generate(DatasetSpec(seed=7, start=START, days=2, per_day=400))
WANT = Counter(i["guid"] for i in DATA.expected(START, END))
_files = itertools.count()


@frozen
class Server:
    """How the fake pages (``order``), the page size, and whether the client has a budget."""

    order: Any
    limit: int
    budget: bool


SERVERS = st.builds(
    Server, st.sampled_from(ORDERS), st.sampled_from([25, 100]), st.booleans()
)  # small pages: many splits, and windows of a page or two
STOPS = st.lists(st.integers(1, 12), min_size=1, max_size=3)  # pages written before each stop

EXAMPLES = settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example is a few runs
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
REPEATED = Server("hour", 25, budget=False)  # 44 came twice before (a repair beside its split)
LOST = Server("hour", 100, budget=True)  # 28 were lost before (splits of earlier runs)


@asynccontextmanager
async def fake_client(server: Server) -> AsyncIterator[VccClient]:
    """A client of a fake paging as ``server`` says, tokens bound to their query."""
    config = FakeConfig(order=server.order, bind_tokens=True)
    rate = BUDGET if server.budget else None
    async with (
        FakeVccServer(DATA, config) as fake,
        client_for(fake, concurrency=CONCURRENCY, requests_per_minute=rate) as vcc,
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
    many pages, or ends before), then to its end: every interaction written, and the pages
    of each run."""
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


async def check_backfill(server: Server, ordered: bool, stops: list[int], target: str) -> None:
    """Stopped after so many pages, run after run, then run to its end: each written once
    (a store keyed by guid would hide a repeat: what the runs wrote is counted too)."""
    query = make_query(START, END, limit=server.limit)
    async with fake_client(server) as vcc:
        written, runs = await backfill(vcc, target, query, ordered, stops)
    assert all(ran <= stop for ran, stop in zip(runs, stops, strict=False))
    repeated = {guid: n for guid, n in written.items() if n > 1}
    assert not repeated, f"{len(repeated)} came twice or more"
    assert not WANT.keys() - written.keys(), f"{len(WANT.keys() - written.keys())} lost"
    assert written == WANT
    assert await stored_guids(target) == WANT


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
@EXAMPLES
@given(server=SERVERS, ordered=st.booleans(), stops=STOPS)
@example(server=REPEATED, ordered=True, stops=[5, 2])
@example(server=LOST, ordered=False, stops=[4, 5, 10])
async def test_a_backfill_stopped_and_resumed_yields_each_interaction_once(
    suffix: str,
    tmp_path_factory: pytest.TempPathFactory,
    server: Server,
    ordered: bool,
    stops: list[int],
) -> None:
    target = tmp_path_factory.mktemp("stops") / f"out{suffix}"
    await check_backfill(server, ordered, stops, str(target))


@settings(EXAMPLES, max_examples=2)
@given(server=SERVERS, ordered=st.booleans(), stops=STOPS)
@example(server=REPEATED, ordered=True, stops=[5, 2])
@example(server=LOST, ordered=True, stops=[8, 12, 6])
async def test_a_postgresql_backfill_stopped_and_resumed_yields_each_interaction_once(
    pg_dsn: str, server: Server, ordered: bool, stops: list[int]
) -> None:
    await check_backfill(server, ordered, stops, await emptied(pg_dsn))


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
@given(server=SERVERS, stops=STOPS)
@example(server=REPEATED, stops=[5, 2])
@example(server=LOST, stops=[8, 12, 6])
async def test_a_sync_pass_stopped_and_resumed_yields_each_interaction_once(
    store: str, server: Server, stops: list[int]
) -> None:
    """The first pass of a sync, stopped after so many pages, run after run: every
    interaction is recorded once and reported new once, nothing is removed."""
    if store.startswith("postgresql"):
        target = await emptied(store)
    else:  # a new file in the test's folder
        target = str(Path(store) / f"store{next(_files)}.sqlite")
    options: dict[str, Any] = {"since": START, "lookback": "3d", "now": lambda: END}
    recorded: Counter[str] = Counter()
    new: Counter[str] = Counter()
    async with fake_client(server) as vcc:
        for stop in [*stops, None]:
            async with await open_state(target, NO_FILTERS, server.limit) as opened:
                state = Counting(opened, recorded)
                engine = SyncEngine(
                    vcc,
                    state,
                    limit=server.limit,
                    should_stop=lambda s=state, n=stop: s.pages == n,
                    **options,
                )
                changes = [change async for change in engine.run_pass()]
            assert {c.kind for c in changes} <= {"new"}
            new.update(c.interaction.guid for c in changes)
            assert stop is None or state.pages <= stop
            if stop is None or engine.last is not None:  # the pass ended (before its stop)
                break
    repeated = {guid: n for guid, n in recorded.items() if n > 1}
    assert not repeated, f"{len(repeated)} came twice or more"
    assert not WANT.keys() - recorded.keys(), f"{len(WANT.keys() - recorded.keys())} lost"
    assert recorded == WANT and new == WANT
