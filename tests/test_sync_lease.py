"""One writer per account and store, fenced: the writer lease of a sync.

On PostgreSQL the lease is the account's advisory lock on the writing connection plus a
generation checked inside every write transaction: a run whose connection is terminated
mid-pass (``pg_terminate_backend``, as an idle timeout or a proxy would) stops with exit 1 and
one line before writing anything, even when a second writer was admitted meanwhile; a second
sync of the account with other filters is refused at once. On SQLite the generation and the
file itself fence the run. A pass judges removed only rows the store held when it began.
The runs are held at the fake's gate, so every interleaving is certain.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from vccasync._converter import structure_interaction
from vccasync._errors import LeaseLostError
from vccasync._query import make_query
from vccasync._windows import Page, Window
from vccasync.fake import DatasetSpec, FakeVccServer, generate, running_in_thread
from vccasync.stores._output import open_sink, open_state
from vccasync.sync._diff import Span
from vccasync.sync._fingerprint import snapshot
from vccasync.sync._state import Observed

from .cli_helpers import cli_env, held, run_cli, start_cli
from .conftest import api_shape

ANCHOR = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
SPEC = DatasetSpec(seed=8, start=ANCHOR - timedelta(days=1), days=1, per_day=200, edge_every=None)
SYNC = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "--account", "acme", "-q"]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVccServer]:
    with running_in_thread(generate(SPEC)) as server:
        yield server


@pytest.fixture(autouse=True)
def open_gate(fake: FakeVccServer) -> Iterator[None]:
    yield
    fake.gate.open()


async def terminate_lease_holders(dsn: str) -> int:
    """``pg_terminate_backend`` every session of this database holding an advisory lock."""
    conn = await asyncpg.connect(dsn)
    try:
        pids = await conn.fetch(
            "SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            " AND l.pid <> pg_backend_pid()"
        )
        for row in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
        return len(pids)
    finally:
        await conn.close()


async def removed_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM interactions WHERE removed_at IS NOT NULL")
        )
    finally:
        await conn.close()


def test_a_sync_whose_lease_connection_is_terminated_mid_pass_stops_with_exit_1(
    fake: FakeVccServer, pg_dsn: str
) -> None:
    args, env = [*SYNC, "-o", pg_dsn], cli_env(fake)
    assert run_cli(args, env).returncode == 0  # a store with rows a rogue pass could remove
    fake.gate.hold_after(0)
    first = start_cli(args, env)
    held(fake, first)  # its pass began: the lease is taken, the search answer held
    assert asyncio.run(terminate_lease_holders(pg_dsn)) == 1
    fake.gate.hold_after(100_000)  # the first stays held; the next writer's answers pass
    second = run_cli(args, env)  # admitted: the lease went with the connection
    assert second.returncode == 0, second.stderr
    fake.gate.open()  # the first goes on: it must notice before writing anything
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 1, stderr
    [line] = stderr.decode().strip().splitlines()
    assert line.startswith("vccasync: error: the writer lease of account acme on postgresql://")
    assert "is lost" in line and "stopped before writing" in line
    assert asyncio.run(removed_rows(pg_dsn)) == 0


def test_two_filter_sets_of_one_account_at_once_the_second_is_refused(
    fake: FakeVccServer, pg_dsn: str
) -> None:
    env = cli_env(fake)
    fake.gate.hold_after(0)
    first = start_cli([*SYNC, "-o", pg_dsn, "--direction", "inbound"], env)
    held(fake, first)
    fake.gate.hold_after(100_000)  # a second writer admitted would run to its end
    second = run_cli([*SYNC, "-o", pg_dsn], env)
    assert second.returncode == 2, second.stderr
    assert second.stderr.strip().splitlines() == [
        "vccasync: error: another sync of account acme is writing to this database"
    ]
    fake.gate.open()
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    assert asyncio.run(removed_rows(pg_dsn)) == 0


def one_page(
    guid: str, start: datetime, window: Window | None = None
) -> tuple[Page, list[Observed]]:
    item = structure_interaction(
        api_shape({"guid": guid, "start": start.isoformat(), "content": []})
    )
    data, print_ = snapshot(item)
    window = window or Window(SPEC.start, ANCHOR)
    return Page(window, [item], None), [Observed(item, print_, data, "new")]


async def test_a_pass_judges_removed_only_rows_held_when_it_began(pg_dsn: str) -> None:
    """A backfill task of the account writes a row into the span of a pass under way (a late
    first piece): the pass did not see it, and must not mark it removed."""
    span = Span(SPEC.start, ANCHOR)
    async with await open_state(pg_dsn, make_query(SPEC.start, ANCHOR).filters) as state:
        await state.begin(span)
        late = SPEC.start + timedelta(hours=2)
        async with await open_sink(pg_dsn, make_query(late, late + timedelta(hours=1))) as sink:
            [(window, _)] = sink.checkpoint.plan()
            page, _ = one_page("late-first-piece", late, window)
            await sink.write(page)
        assert [k.guid for k in await state.unseen(span)] == []


async def test_a_sqlite_store_replaced_under_a_run_stops_it_before_writing(
    tmp_path: Path,
) -> None:
    path, other = tmp_path / "store.sqlite", tmp_path / "restored.sqlite"
    span = Span(SPEC.start, ANCHOR)
    filters = make_query(SPEC.start, ANCHOR).filters
    await (await open_state(str(other), filters)).close()
    async with await open_state(str(path), filters) as state:
        _, plan = await state.begin(span)
        os.replace(other, path)  # e.g. a backup restored over the live file
        [(window, _), *_] = plan or []
        page, observed = one_page("a-guid", SPEC.start + timedelta(hours=1), window)
        with pytest.raises(LeaseLostError, match="the file was replaced"):
            await state.record(page, observed)


async def test_a_sqlite_run_whose_lease_was_taken_writes_nothing(tmp_path: Path) -> None:
    """A second writer that took the lease (a lock the filesystem does not honour, as on some
    network filesystems) bumps the generation: the first stops at its next write."""
    import sqlite3

    path = tmp_path / "store.sqlite"
    span = Span(SPEC.start, ANCHOR)
    async with await open_state(str(path), make_query(SPEC.start, ANCHOR).filters) as state:
        _, plan = await state.begin(span)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE vccasync_lease SET generation = generation + 1")
        [(window, _), *_] = plan or []
        page, observed = one_page("a-guid", SPEC.start + timedelta(hours=1), window)
        with pytest.raises(LeaseLostError, match="another writer took it"):
            await state.record(page, observed)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM interactions").fetchone() == (0,)


async def test_a_backfill_task_whose_lease_connection_is_terminated_writes_nothing(
    pg_dsn: str,
) -> None:
    """A backfill task's lease (per task) is held on its writing connection: once that
    connection is terminated, its next page raises instead of writing beside a second run."""
    start = SPEC.start + timedelta(hours=1)
    query = make_query(start, start + timedelta(hours=1))
    async with await open_sink(pg_dsn, query, account="north") as sink:
        assert await terminate_lease_holders(pg_dsn) == 1
        async with await open_sink(pg_dsn, query, account="north"):  # a second run admitted
            pass
        [(window, _)] = sink.checkpoint.plan()
        page, _ = one_page("a-guid", start, window)
        with pytest.raises(LeaseLostError, match=r"the lease of task .* of account north"):
            await sink.write(page)
