"""A sync's state in PostgreSQL (asyncpg): rows upserted by guid, ``removed_at``, the pass
checkpoint, per account and filter set.

The same design as the SQLite state (:mod:`vccasync.stores.sqlite_changes`): each page's new and
changed rows with their content, the guids it returned and the pass's checkpoint commit in
one transaction; rows are judged removed only once the pass completes. One sync of an account
and filter set runs at a time (an advisory lock, :meth:`PostgresSink.hold`): two would share
one seen-table, and one finishing would make the other mark live rows removed.

Tables added to those of :mod:`vccasync.stores.postgres`::

    vccasync_sync(account, scope, PK (account, scope), covered_from, covered_to,
                  pass_from, pass_to (the last pass), checkpoint jsonb (NULL: it completed))
    vccasync_sync_seen(account, scope, guid, PK (account, scope, guid))
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Self

from ..converter import structure_interaction, to_api
from ..errors import InvalidRequestError
from ..jsonio import dumps, loads
from ..models import Interaction
from ..query import MAX_LIMIT, SearchFilters
from ..sync.diff import Known, Span
from ..sync.scope import floor_span, in_scope, pass_query, scope_key
from ..sync.state import Observed
from ..windows import Page, WindowPlan
from .base import SinkContext
from .checkpoint import Checkpoint
from .postgres import DELETE_STALE_CONTENT, UPSERT_CONTENT, PostgresSink, redact_url
from .sqlite_changes import known_row

__all__ = ["PG_SYNC_SCHEMA", "PostgresSyncState"]

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
CREATE TABLE IF NOT EXISTS vccasync_sync_seen (
    account text NOT NULL,
    scope text NOT NULL,
    guid text NOT NULL,
    PRIMARY KEY (account, scope, guid)
);
"""
_SCHEMA_LOCK: Final = 0x76636362

_UPSERT: Final = """
INSERT INTO interactions AS i
    (guid, account, start, connect_from, connect_to, direction, agents, data, fingerprint)
SELECT DISTINCT ON (d->>'guid')
    d->>'guid', $3, (d->>'start')::timestamptz, d->>'connectFrom', d->>'connectTo',
    d->>'direction',
    ARRAY(SELECT a->>'id' FROM jsonb_array_elements(d->'handlingAgents') a), d, u.print
FROM unnest($1::text[], $2::bytea[]) AS u(doc, print), LATERAL (SELECT u.doc::jsonb AS d) j
ORDER BY d->>'guid'
ON CONFLICT (guid) DO UPDATE SET
    account = EXCLUDED.account, start = EXCLUDED.start, connect_from = EXCLUDED.connect_from,
    connect_to = EXCLUDED.connect_to, direction = EXCLUDED.direction, agents = EXCLUDED.agents,
    data = EXCLUDED.data, fingerprint = EXCLUDED.fingerprint, updated_at = now(),
    removed_at = NULL
"""


class PostgresSyncState(SinkContext):
    """A :class:`~vccasync.sync.state.SyncState` in PostgreSQL for one account and filter
    set; use ``async with`` (or :meth:`open` then :meth:`close`)."""

    def __init__(
        self, url: str, filters: SearchFilters, limit: int = MAX_LIMIT, *, account: str = "default"
    ) -> None:
        self._sink = PostgresSink(url, account=account)
        self.account = account
        self.filters = filters
        self.limit = limit
        self.scope = scope_key(filters)
        self._checkpoint: Checkpoint | None = None

    def __repr__(self) -> str:
        return f"PostgresSyncState({self.target!r}, account={self.account!r})"

    @property
    def target(self) -> str:
        """The database URL without its password."""
        return redact_url(self._sink.dsn)

    @classmethod
    async def connect(
        cls, url: str, filters: SearchFilters, limit: int = MAX_LIMIT, *, account: str = "default"
    ) -> PostgresSyncState:
        """Connect, create (or migrate) the tables."""
        state = cls(url, filters, limit, account=account)
        await state.open()
        return state

    async def open(self) -> None:
        """Connect and create the tables if missing."""
        await self._sink.open()
        conn = self._sink.connection
        try:
            await self._sink.hold(
                f"vccasync sync\x1f{self.account}\x1f{self.scope}",
                f"another sync of {self.account}/{self.scope} is running on this database",
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
        except BaseException:
            await self._sink.close()
            raise

    async def __aenter__(self) -> Self:
        return self

    async def close(self) -> None:
        """Close the connection."""
        await self._sink.close()

    async def _row(self) -> Any:
        return await self._sink.connection.fetchrow(
            "SELECT covered_from, covered_to, pass_from, pass_to, checkpoint::text"
            " FROM vccasync_sync WHERE account = $1 AND scope = $2",
            self.account,
            self.scope,
        )

    async def coverage(self) -> Span | None:
        row = await self._row()
        return None if row["covered_from"] is None else Span(row["covered_from"], row["covered_to"])

    async def begin(self, span: Span) -> tuple[Span, WindowPlan | None]:
        row = await self._row()
        if row["pass_from"] is not None and row["checkpoint"] is not None:
            resumed = Span(row["pass_from"], row["pass_to"])
            checkpoint = Checkpoint.from_json(loads(row["checkpoint"]))
            if checkpoint.matches(pass_query(resumed, self.filters, self.limit)):
                self._checkpoint = checkpoint
                return resumed, checkpoint.plan()
        span = floor_span(span)
        checkpoint = Checkpoint.start(pass_query(span, self.filters, self.limit))
        conn = self._sink.connection
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM vccasync_sync_seen WHERE account = $1 AND scope = $2",
                self.account,
                self.scope,
            )
            await conn.execute(
                "UPDATE vccasync_sync SET pass_from = $3, pass_to = $4, checkpoint = $5::jsonb"
                " WHERE account = $1 AND scope = $2",
                self.account,
                self.scope,
                span.start,
                span.end,
                dumps(checkpoint.to_json()).decode(),
            )
        self._checkpoint = checkpoint
        return span, checkpoint.plan()

    async def last_pass(self) -> Span | None:
        """The span of the pass under way, else of the last complete one (None: no pass)."""
        row = await self._row()
        return None if row["pass_from"] is None else Span(row["pass_from"], row["pass_to"])

    async def written(self, span: Span, since: datetime) -> list[Interaction]:
        """The present rows of ``span`` in these filters written at ``since`` or later."""
        rows = await self._sink.connection.fetch(
            "SELECT data::text AS data FROM interactions WHERE account = $1"
            " AND start BETWEEN $2 AND $3 AND removed_at IS NULL AND updated_at >= $4"
            " ORDER BY start, guid",
            self.account,
            span.start,
            span.end,
            since,
        )
        return [
            structure_interaction(loads(r["data"])) for r in rows if in_scope(r["data"], self.scope)
        ]

    async def known(self, guids: Collection[str]) -> Mapping[str, Known]:
        rows = await self._sink.connection.fetch(
            "SELECT guid, start, fingerprint, data::text AS data, removed_at IS NOT NULL AS gone"
            " FROM interactions WHERE guid = ANY($1::text[])",
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
        conn = self._sink.connection
        async with conn.transaction():
            await self._write([seen for seen in observed if seen.kind is not None])
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

    async def _write(self, observed: Sequence[Observed]) -> None:
        """Upsert these versions and their content (inside the caller's transaction)."""
        if not observed:
            return
        conn = self._sink.connection
        docs = [dumps(to_api(seen.interaction)).decode() for seen in observed]
        await conn.execute(_UPSERT, docs, [seen.fingerprint for seen in observed], self.account)
        doc = "[" + ",".join(docs) + "]"
        guids = [seen.interaction.guid for seen in observed]
        await conn.execute(DELETE_STALE_CONTENT, doc, guids)
        await conn.execute(UPSERT_CONTENT, doc)

    async def unseen(self, span: Span) -> list[Known]:
        rows = await self._sink.connection.fetch(
            "SELECT guid, start, fingerprint, data::text AS data FROM interactions i"
            " WHERE account = $1 AND start BETWEEN $3 AND $4 AND removed_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM vccasync_sync_seen s WHERE s.account = $1"
            " AND s.scope = $2 AND s.guid = i.guid) ORDER BY start, guid",
            self.account,
            self.scope,
            span.start,
            span.end,
        )
        return [
            known_row(r["guid"], r["start"], r["fingerprint"], r["data"], False)
            for r in rows
            if in_scope(r["data"], self.scope)
        ]

    async def finish(
        self, span: Span, gone: Sequence[str], keep_from: datetime, left: Sequence[Observed] = ()
    ) -> None:
        conn = self._sink.connection
        async with conn.transaction():
            await conn.execute(
                "UPDATE interactions SET removed_at = now() WHERE guid = ANY($1::text[])",
                list(gone),
            )
            await self._write(left)
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
        self._checkpoint = None
