"""A sync's state in PostgreSQL (asyncpg): rows upserted by guid, ``removed_at``, the pass
checkpoint, per account and filter set.

The same design as the SQLite state (:mod:`vccasync.stores._sqlite_changes`): each page's new and
changed rows with their content, the guids it returned and the pass's checkpoint commit in
one transaction; rows are judged removed only once the pass completes. One sync of an account
and filter set runs at a time (an advisory lock, :meth:`PostgresSink.hold`): two would share
one seen-table, and one finishing would make the other mark live rows removed.

Tables added to those of :mod:`vccasync.stores._postgres`::

    vccasync_sync(account, scope, PK (account, scope), covered_from, covered_to,
                  pass_from, pass_to (the last pass), checkpoint jsonb (NULL: it completed))
    vccasync_sync_seen(account, scope, guid, PK (account, scope, guid))
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final, Self

import attrs

from .._converter import to_api
from .._errors import InvalidRequestError, LeaseLostError
from .._jsonio import dumps, loads
from .._query import MAX_LIMIT, NO_FILTERS, SearchFilters
from .._windows import Page, WindowPlan
from ..sync._diff import Known, Span
from ..sync._queue import QueuedPiece, QueueStatus, Settlement, backoff, plan_queue
from ..sync._scope import floor_span, in_scope, pass_query, scope_key
from ..sync._state import Observed
from ._base import SinkContext
from ._checkpoint import Checkpoint
from ._contract import Dropped, StoreOptions, SyncStore
from ._postgres import (
    CONNECTION_LOST,
    DELETE_STALE_CONTENT,
    UPSERT_CONTENT,
    PostgresSink,
    redact_url,
)
from ._signal import QueueSignal
from ._sqlite_changes import known_row, pieces_due

__all__ = ["PG_SYNC_SCHEMA", "PostgresSyncState", "open_store"]

PG_SYNC_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS vccasync_sync (
    account text NOT NULL,
    scope text NOT NULL,
    covered_from timestamptz,
    covered_to timestamptz,
    pass_from timestamptz,
    pass_to timestamptz,
    checkpoint jsonb,
    PRIMARY KEY (account, scope)
);
ALTER TABLE vccasync_sync ADD COLUMN IF NOT EXISTS pass_began timestamptz;
CREATE TABLE IF NOT EXISTS vccasync_sync_seen (
    account text NOT NULL,
    scope text NOT NULL,
    guid text NOT NULL,
    PRIMARY KEY (account, scope, guid)
);
CREATE TABLE IF NOT EXISTS vccasync_lease (
    account text PRIMARY KEY,
    generation bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS vccasync_content_queue (
    guid text NOT NULL,
    content_key text NOT NULL,
    account text NOT NULL,
    type text NOT NULL,
    version text NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    next_try timestamptz,
    PRIMARY KEY (guid, content_key)
);
CREATE INDEX IF NOT EXISTS vccasync_content_queue_due
    ON vccasync_content_queue (account, next_try);
"""
_SCHEMA_LOCK: Final = 0x76636362
# A pass begins once the writes under way have committed (SHARE waits for them and holds off
# new ones for the instant it takes), so every row version written before it has an
# updated_at (clock_timestamp()) before pass_began and every later one after: "the rows the
# store held when the pass began" is exact, whatever other writers (backfill tasks) do.
_WRITES_SETTLED: Final = "LOCK TABLE interactions IN SHARE MODE"

_UPSERT: Final = """
INSERT INTO interactions AS i
    (guid, account, start, connect_from, connect_to, direction, agents, data, fingerprint,
     updated_at)
SELECT DISTINCT ON (d->>'guid')
    d->>'guid', $3, (d->>'start')::timestamptz, d->>'connectFrom', d->>'connectTo',
    d->>'direction',
    ARRAY(SELECT a->>'id' FROM jsonb_array_elements(d->'handlingAgents') a), d, u.print,
    clock_timestamp()
FROM unnest($1::text[], $2::bytea[]) AS u(doc, print), LATERAL (SELECT u.doc::jsonb AS d) j
ORDER BY d->>'guid'
ON CONFLICT (guid) DO UPDATE SET
    account = EXCLUDED.account, start = EXCLUDED.start, connect_from = EXCLUDED.connect_from,
    connect_to = EXCLUDED.connect_to, direction = EXCLUDED.direction, agents = EXCLUDED.agents,
    data = EXCLUDED.data, fingerprint = EXCLUDED.fingerprint, updated_at = clock_timestamp(),
    removed_at = NULL
"""


class PostgresSyncState(SinkContext, QueueSignal):
    """A :class:`~vccasync.stores._contract.SyncStore` in PostgreSQL for one account; use
    ``async with`` (or :meth:`open` then :meth:`close`).

    The writer lease is the account's advisory lock held on the writing connection itself,
    plus a generation in ``vccasync_lease`` (the fencing token) that every write transaction
    checks inside itself: the connection dropping (an idle timeout, ``pg_terminate_backend``)
    or another writer taking the lease ends the run with ``LeaseLostError`` before it writes
    anything more. Calls on the one connection are serialized (the downloader settles the
    queue beside the pass).
    """

    def __init__(
        self,
        url: str,
        filters: SearchFilters | StoreOptions = NO_FILTERS,
        limit: int = MAX_LIMIT,
        *,
        account: str = "default",
    ) -> None:
        QueueSignal.__init__(self)
        options = (
            filters
            if isinstance(filters, StoreOptions)
            else StoreOptions(filters, limit, account=account)
        )
        self._sink = PostgresSink(url, account=options.account)
        self.options = options
        self.account = options.account
        self.filters = options.filters
        self.limit = options.limit
        self.scope = scope_key(options.filters)
        self.dropped = Dropped()
        self._checkpoint: Checkpoint | None = None
        self._began: datetime | None = None
        self._token: int | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PostgresSyncState({self.target!r}, account={self.account!r})"

    @property
    def target(self) -> str:
        """The database URL without its password."""
        return redact_url(self._sink.dsn)

    @classmethod
    async def connect(
        cls,
        url: str,
        filters: SearchFilters | StoreOptions = NO_FILTERS,
        limit: int = MAX_LIMIT,
        *,
        account: str = "default",
    ) -> PostgresSyncState:
        """Connect, create (or migrate) the tables, take the account's writer lease (unless
        read-only)."""
        state = cls(url, filters, limit, account=account)
        await state.open()
        return state

    async def open(self) -> None:
        """Connect, create the tables if missing and take the lease."""
        await self._sink.open()
        conn = self._sink.connection
        try:
            if self.options.read_only:
                return
            await self._sink.hold(
                f"vccasync sync\x1f{self.account}",
                f"another sync of account {self.account} is writing to this database",
            )
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(PG_SYNC_SCHEMA)
                await conn.execute(
                    "INSERT INTO vccasync_sync (account, scope) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    self.account,
                    self.scope,
                )
                self._token = await conn.fetchval(
                    "INSERT INTO vccasync_lease AS l (account, generation) VALUES ($1, 1)"
                    " ON CONFLICT (account) DO UPDATE SET generation = l.generation + 1"
                    " RETURNING generation",
                    self.account,
                )
        except BaseException:
            await self._sink.close()
            raise

    async def __aenter__(self) -> Self:
        return self

    async def close(self) -> None:
        """Close the connection (the lease goes with it)."""
        await self._sink.close()

    @asynccontextmanager
    async def _use(self) -> AsyncIterator[Any]:
        """The connection, alone; its loss is the lease's loss (``LeaseLostError``)."""
        async with self._lock:
            try:
                yield self._sink.connection
            except CONNECTION_LOST as exc:
                raise LeaseLostError(
                    f"the writer lease of account {self.account} on {self.target} is lost (its"
                    f" connection ended: {_reason(exc)}): stopped before writing"
                ) from None

    @asynccontextmanager
    async def _write_transaction(self) -> AsyncIterator[Any]:
        """A transaction that first checks, inside itself, that the lease is still ours."""
        if self._token is None:
            raise InvalidRequestError(f"{self.target} is open read-only")
        async with self._use() as conn, conn.transaction():
            token = await conn.fetchval(
                "SELECT generation FROM vccasync_lease WHERE account = $1 FOR SHARE", self.account
            )
            if token != self._token:
                raise LeaseLostError(
                    f"the writer lease of account {self.account} on {self.target} is lost"
                    " (another writer took it): stopped before writing"
                )
            yield conn

    async def _row(self) -> Any:
        async with self._use() as conn:
            return await conn.fetchrow(
                "SELECT covered_from, covered_to, pass_from, pass_to, checkpoint::text,"
                " pass_began FROM vccasync_sync WHERE account = $1 AND scope = $2",
                self.account,
                self.scope,
            )

    async def coverage(self) -> Span | None:
        row = await self._row()
        if row is None or row["covered_from"] is None:
            return None
        return Span(row["covered_from"], row["covered_to"])

    async def begin(self, span: Span) -> tuple[Span, WindowPlan | None]:
        row = await self._row()
        if row["pass_from"] is not None and row["checkpoint"] is not None:
            resumed = Span(row["pass_from"], row["pass_to"])
            checkpoint = Checkpoint.from_json(loads(row["checkpoint"]))
            if checkpoint.matches(pass_query(resumed, self.filters, self.limit)):
                began = row["pass_began"]
                if began is None:  # a pass begun by an older version: it begins now
                    async with self._write_transaction() as conn:
                        await conn.execute(_WRITES_SETTLED)
                        began = await conn.fetchval(
                            "UPDATE vccasync_sync SET pass_began = clock_timestamp()"
                            " WHERE account = $1 AND scope = $2 RETURNING pass_began",
                            self.account,
                            self.scope,
                        )
                self._checkpoint, self._began = checkpoint, began
                return resumed, checkpoint.plan()
        span = floor_span(span)
        checkpoint = Checkpoint.start(pass_query(span, self.filters, self.limit))
        async with self._write_transaction() as conn:
            await conn.execute(_WRITES_SETTLED)
            await conn.execute(
                "DELETE FROM vccasync_sync_seen WHERE account = $1 AND scope = $2",
                self.account,
                self.scope,
            )
            self._began = await conn.fetchval(
                "UPDATE vccasync_sync SET pass_from = $3, pass_to = $4, checkpoint = $5::jsonb,"
                " pass_began = clock_timestamp() WHERE account = $1 AND scope = $2"
                " RETURNING pass_began",
                self.account,
                self.scope,
                span.start,
                span.end,
                dumps(checkpoint.to_json()).decode(),
            )
        self._checkpoint = checkpoint
        return span, checkpoint.plan()

    async def known(self, guids: Collection[str]) -> Mapping[str, Known]:
        async with self._use() as conn:
            rows = await conn.fetch(
                "SELECT guid, start, fingerprint, data::text AS data,"
                " removed_at IS NOT NULL AS gone FROM interactions WHERE guid = ANY($1::text[])",
                list(guids),
            )
        return {
            r["guid"]: known_row(r["guid"], r["start"], r["fingerprint"], r["data"], r["gone"])
            for r in rows
        }

    async def record(self, page: Page, observed: Sequence[Observed]) -> None:
        checkpoint = self._checkpoint
        if checkpoint is None:
            raise InvalidRequestError("record() before begin()")
        async with self._write_transaction() as conn:
            queued = await self._write(conn, [seen for seen in observed if seen.kind is not None])
            await conn.execute(
                "INSERT INTO vccasync_sync_seen (account, scope, guid)"
                " SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
                self.account,
                self.scope,
                [item.guid for item in page.items],
            )
            checkpoint.advance(page)
            await conn.execute(
                "UPDATE vccasync_sync SET checkpoint = $3::jsonb WHERE account = $1 AND scope = $2",
                self.account,
                self.scope,
                dumps(checkpoint.to_json()).decode(),
            )
        if queued:
            self.queued()

    async def _write(self, conn: Any, observed: Sequence[Observed]) -> bool:
        """Upsert these versions, their content and their queue rows (inside the caller's
        transaction); whether pieces were queued."""
        if not observed:
            return False
        docs = [dumps(to_api(seen.interaction)).decode() for seen in observed]
        await conn.execute(_UPSERT, docs, [seen.fingerprint for seen in observed], self.account)
        doc = "[" + ",".join(docs) + "]"
        guids = [seen.interaction.guid for seen in observed]
        await conn.execute(DELETE_STALE_CONTENT, doc, guids)
        await conn.execute(UPSERT_CONTENT, doc)
        if self.options.content is None:
            return False
        rows = await conn.fetch(
            "SELECT guid, content_key, version FROM vccasync_content_queue"
            " WHERE guid = ANY($1::text[])",
            guids,
        )
        plan = plan_queue(
            {(r["guid"], r["content_key"]): r["version"] for r in rows},
            [(seen.interaction, seen.pieces) for seen in observed],
            self.options.download_types,  # a sync owes the pieces of the types it downloads
        )
        if plan.deletes:
            await conn.execute(
                "DELETE FROM vccasync_content_queue q USING unnest($1::text[], $2::text[])"
                " AS d(guid, key) WHERE q.guid = d.guid AND q.content_key = d.key",
                [g for g, _ in plan.deletes],
                [k for _, k in plan.deletes],
            )
        if plan.upserts:
            await conn.execute(
                "INSERT INTO vccasync_content_queue AS q"
                " (guid, content_key, account, type, version)"
                " SELECT g, k, $5, t, v FROM unnest($1::text[], $2::text[], $3::text[],"
                " $4::text[]) AS u(g, k, t, v)"
                " ON CONFLICT (guid, content_key) DO UPDATE SET type = EXCLUDED.type,"
                " version = EXCLUDED.version, account = EXCLUDED.account, attempts = 0,"
                " last_error = NULL, next_try = NULL",
                *(list(column) for column in zip(*plan.upserts, strict=True)),
                self.account,
            )
        self.dropped = Dropped(
            self.dropped.superseded + plan.superseded, self.dropped.gone + plan.gone
        )
        return bool(plan.upserts)

    async def unseen(self, span: Span) -> list[Known]:
        async with self._use() as conn:
            rows = await conn.fetch(
                "SELECT guid, start, fingerprint, data::text AS data FROM interactions i"
                " WHERE account = $1 AND start BETWEEN $3 AND $4 AND removed_at IS NULL"
                " AND ($5::timestamptz IS NULL OR updated_at < $5)"
                " AND NOT EXISTS (SELECT 1 FROM vccasync_sync_seen s WHERE s.account = $1"
                " AND s.scope = $2 AND s.guid = i.guid) ORDER BY start, guid",
                self.account,
                self.scope,
                span.start,
                span.end,
                self._began,
            )
        return [
            known_row(r["guid"], r["start"], r["fingerprint"], r["data"], False)
            for r in rows
            if in_scope(r["data"], self.scope)
        ]

    async def finish(
        self, span: Span, gone: Sequence[str], keep_from: datetime, left: Sequence[Observed] = ()
    ) -> None:
        async with self._write_transaction() as conn:
            await conn.execute(
                "UPDATE interactions SET removed_at = now() WHERE guid = ANY($1::text[])",
                list(gone),
            )
            dropped = await conn.fetchval(
                "WITH d AS (DELETE FROM vccasync_content_queue WHERE guid = ANY($1::text[])"
                " RETURNING 1) SELECT count(*) FROM d",
                list(gone),
            )
            await self._write(conn, left)
            await conn.execute(
                "DELETE FROM vccasync_sync_seen WHERE account = $1 AND scope = $2",
                self.account,
                self.scope,
            )
            await conn.execute(
                "UPDATE vccasync_sync SET covered_from = least(coalesce(covered_from, $3), $3),"
                " covered_to = $4, checkpoint = NULL"
                " WHERE account = $1 AND scope = $2",
                self.account,
                self.scope,
                span.start,
                span.end,
            )
        self.dropped = attrs.evolve(self.dropped, gone=self.dropped.gone + int(dropped))
        self._checkpoint = None

    async def due(
        self, now: datetime, limit: int, skip: Collection[tuple[str, str]] = ()
    ) -> list[QueuedPiece]:
        types = self.options.download_types
        async with self._use() as conn:
            rows = await conn.fetch(
                "SELECT q.guid, q.content_key, q.version, q.attempts, i.data::text AS data,"
                " i.removed_at FROM vccasync_content_queue q"
                " LEFT JOIN interactions i ON i.guid = q.guid"
                " WHERE q.account = $1 AND (q.next_try IS NULL OR q.next_try <= $2)"
                " AND ($3::text[] IS NULL OR q.type = ANY($3::text[]))"
                " ORDER BY q.next_try NULLS FIRST, q.queued_at LIMIT $4",
                self.account,
                now,
                None if types is None else sorted(types),
                limit + len(skip),
            )
        taken, stale = pieces_due([tuple(r.values()) for r in rows], set(skip), limit)
        if stale:
            async with self._write_transaction() as conn:
                await conn.execute(
                    "DELETE FROM vccasync_content_queue q USING unnest($1::text[], $2::text[])"
                    " AS d(guid, key) WHERE q.guid = d.guid AND q.content_key = d.key",
                    [g for g, _ in stale],
                    [k for _, k in stale],
                )
            self.dropped = attrs.evolve(self.dropped, gone=self.dropped.gone + len(stale))
        return taken

    async def settle(self, outcomes: Sequence[Settlement], now: datetime) -> None:
        gone = 0
        async with self._write_transaction() as conn:
            for done in outcomes:
                key = (done.guid, done.content_key, done.version)
                if done.error is None or done.gone:
                    deleted = await conn.fetchval(
                        "WITH d AS (DELETE FROM vccasync_content_queue WHERE guid = $1"
                        " AND content_key = $2 AND version = $3 RETURNING 1)"
                        " SELECT count(*) FROM d",
                        *key,
                    )
                    gone += int(deleted) if done.gone else 0
                    continue
                attempts = await conn.fetchval(
                    "SELECT attempts FROM vccasync_content_queue"
                    " WHERE guid = $1 AND content_key = $2 AND version = $3",
                    *key,
                )
                if attempts is None:
                    continue
                await conn.execute(
                    "UPDATE vccasync_content_queue SET attempts = $4, last_error = $5,"
                    " next_try = $6 WHERE guid = $1 AND content_key = $2 AND version = $3",
                    *key,
                    attempts + 1,
                    done.error[:500],
                    now + backoff(attempts + 1),
                )
        self.dropped = attrs.evolve(self.dropped, gone=self.dropped.gone + gone)

    async def queue_status(self) -> QueueStatus:
        async with self._use() as conn:
            if await conn.fetchval("SELECT to_regclass('vccasync_content_queue')") is None:
                return QueueStatus(0, 0, None, None)
            row = await conn.fetchrow(
                "SELECT count(*) AS depth, count(*) FILTER (WHERE attempts > 0) AS failed,"
                " min(queued_at) AS oldest, min(next_try) FILTER (WHERE attempts > 0) AS retry"
                " FROM vccasync_content_queue WHERE account = $1",
                self.account,
            )
        return QueueStatus(int(row["depth"]), int(row["failed"]), row["oldest"], row["retry"])

    async def status(self) -> list[tuple[str, Span | None]]:
        async with self._use() as conn:
            if await conn.fetchval("SELECT to_regclass('vccasync_sync')") is None:
                return []
            rows = await conn.fetch(
                "SELECT scope, covered_from, covered_to FROM vccasync_sync WHERE account = $1"
                " ORDER BY scope",
                self.account,
            )
        return [
            (
                r["scope"],
                None if r["covered_from"] is None else Span(r["covered_from"], r["covered_to"]),
            )
            for r in rows
        ]


def _span(start: datetime | None, end: datetime | None) -> Span | None:
    return None if start is None or end is None else Span(start, end)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def open_store(target: str, options: StoreOptions) -> SyncStore:
    """The registry's opener (:mod:`vccasync.stores._registry`); its return type makes mypy
    check that the class keeps the whole contract."""
    return await PostgresSyncState.connect(target, options)
