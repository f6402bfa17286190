"""PostgreSQL sink: interactions upserted, the checkpoint in the same transaction (asyncpg).

Any number of processes may write into one database at once: every page is one transaction
that upserts its interactions and content and moves its window's checkpoint, so a killed
writer loses nothing and a rerun writes nothing twice. One search (a task, a sync's scope) has
one writer at a time: :meth:`PostgresSink.hold` takes a session-level advisory lock on the
writing connection for the life of the run (a second run is refused at once; a run whose
connection drops loses the lock and writes nothing more). Needs the
``postgres`` extra.

Tables (created when missing; see the README's "Many accounts" section)::

    interactions(guid PK, account, start timestamptz, connect_from, connect_to, direction,
                 agents text[], data jsonb, updated_at, fingerprint bytea, removed_at)
    content(guid, content_key, PK (guid, content_key), type, content_type, content_length,
            last_modified, owning_agent, properties jsonb)
    vccasync_tasks(account, task, PK (account, task), query jsonb, windows_total, written,
                   created_at, finished_at)
    vccasync_windows(account, task, window_key, PK (account, task, window_key), token)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from .._converter import to_api
from .._errors import InvalidRequestError, LeaseLostError, VccError
from .._jsonio import dumps
from .._query import SearchQuery
from .._windows import Page, Window
from ._base import SinkContext
from ._checkpoint import Checkpoint, checkpoint_name, legacy_identity

try:
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the extra
    asyncpg = None  # type: ignore[assignment]

__all__ = [
    "CONNECTION_LOST",
    "DELETE_STALE_CONTENT",
    "SCHEMA",
    "UPSERT_CONTENT",
    "PostgresQuerySink",
    "PostgresSink",
    "is_postgres_url",
    "redact_url",
    "require_postgres",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    guid text PRIMARY KEY,
    account text NOT NULL,
    start timestamptz NOT NULL,
    connect_from text,
    connect_to text,
    direction text,
    agents text[] NOT NULL DEFAULT '{}',
    data jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS fingerprint bytea;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS removed_at timestamptz;
CREATE INDEX IF NOT EXISTS interactions_account_start ON interactions (account, start);
CREATE TABLE IF NOT EXISTS content (
    guid text NOT NULL REFERENCES interactions (guid) ON DELETE CASCADE,
    content_key text NOT NULL,
    type text NOT NULL,
    content_type text,
    content_length bigint,
    last_modified timestamptz,
    owning_agent text,
    properties jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (guid, content_key)
);
CREATE INDEX IF NOT EXISTS content_type ON content (type);
CREATE TABLE IF NOT EXISTS vccasync_tasks (
    account text NOT NULL,
    task text NOT NULL,
    query jsonb NOT NULL,
    windows_total integer NOT NULL DEFAULT 0,
    written bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (account, task)
);
-- what split windows must re-cover, and whether the order broke (Checkpoint.repairs)
ALTER TABLE vccasync_tasks ADD COLUMN IF NOT EXISTS resume jsonb;
CREATE TABLE IF NOT EXISTS vccasync_windows (
    account text NOT NULL,
    task text NOT NULL,
    window_key text NOT NULL,
    token text,
    PRIMARY KEY (account, task, window_key),
    FOREIGN KEY (account, task) REFERENCES vccasync_tasks ON DELETE CASCADE
);
"""

# what a dropped connection raises: a lease held on that connection is gone with it
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    (OSError,)
    if asyncpg is None
    else (
        OSError,
        asyncpg.InterfaceError,
        asyncpg.PostgresConnectionError,
        asyncpg.AdminShutdownError,
    )
)

_SCHEMA_LOCK = 0x76636361  # advisory lock: concurrent writers create the tables one at a time

# One JSON array per page; columns are read from the API's own JSON inside the database.
# DISTINCT ON + ORDER BY guid: one row per guid, locked in a fixed order (no deadlocks).
# updated_at is the clock when the row is written (not the transaction's start): a sync's pass
# compares it with the instant it began (vccasync.stores._postgres_changes).
_UPSERT_INTERACTIONS = """
INSERT INTO interactions AS i
    (guid, account, start, connect_from, connect_to, direction, agents, data, updated_at)
SELECT DISTINCT ON (d->>'guid')
    d->>'guid', $2, (d->>'start')::timestamptz, d->>'connectFrom', d->>'connectTo',
    d->>'direction',
    ARRAY(SELECT a->>'id' FROM jsonb_array_elements(d->'handlingAgents') a), d,
    clock_timestamp()
FROM jsonb_array_elements($1::jsonb) d
ORDER BY d->>'guid'
ON CONFLICT (guid) DO UPDATE SET
    account = EXCLUDED.account, start = EXCLUDED.start, connect_from = EXCLUDED.connect_from,
    connect_to = EXCLUDED.connect_to, direction = EXCLUDED.direction, agents = EXCLUDED.agents,
    data = EXCLUDED.data, updated_at = clock_timestamp(), fingerprint = NULL, removed_at = NULL
WHERE (i.account, i.data) IS DISTINCT FROM (EXCLUDED.account, EXCLUDED.data)
"""

DELETE_STALE_CONTENT = """
DELETE FROM content c
WHERE c.guid = ANY($2::text[])
  AND (c.guid, c.content_key) NOT IN (
      SELECT d->>'guid', x->>'contentKey'
      FROM jsonb_array_elements($1::jsonb) d, jsonb_array_elements(d->'content') x)
"""

UPSERT_CONTENT = """
INSERT INTO content AS c
    (guid, content_key, type, content_type, content_length, last_modified, owning_agent,
     properties)
SELECT DISTINCT ON (d->>'guid', x->>'contentKey')
    d->>'guid', x->>'contentKey', x->>'type', x->>'contentType',
    (x->>'contentLength')::numeric::bigint, (x->>'lastModified')::timestamptz,
    x->'owningAgent'->>'id', coalesce(x->'properties', '{}')
FROM jsonb_array_elements($1::jsonb) d, jsonb_array_elements(d->'content') x
ORDER BY d->>'guid', x->>'contentKey'
ON CONFLICT (guid, content_key) DO UPDATE SET
    type = EXCLUDED.type, content_type = EXCLUDED.content_type,
    content_length = EXCLUDED.content_length, last_modified = EXCLUDED.last_modified,
    owning_agent = EXCLUDED.owning_agent, properties = EXCLUDED.properties
WHERE (c.type, c.content_type, c.content_length, c.last_modified, c.owning_agent, c.properties)
    IS DISTINCT FROM (EXCLUDED.type, EXCLUDED.content_type, EXCLUDED.content_length,
                      EXCLUDED.last_modified, EXCLUDED.owning_agent, EXCLUDED.properties)
"""


def is_postgres_url(target: str) -> bool:
    """Whether an ``--output`` names a PostgreSQL database."""
    return target.startswith(("postgresql://", "postgres://"))


def require_postgres(output: str) -> str:
    """``output`` when it is a PostgreSQL URL, else ``InvalidRequestError``."""
    if not is_postgres_url(output):
        raise InvalidRequestError(
            f"tasks write to PostgreSQL: --output must be a postgresql:// URL, got {output!r}"
        )
    return output


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _dumps(value: Any) -> str:
    return dumps(value).decode()


class PostgresSink(SinkContext):
    """Writes pages of one account's searches into PostgreSQL; use ``async with``.

    ``begin(task, query, windows)`` returns what is left of ``task`` (all of ``windows`` on a
    first run); ``write(task, page)`` stores a page and its checkpoint in one transaction.
    ``task`` is any stable name of one search (the same search must get the same name).
    """

    def __init__(self, dsn: str, *, account: str = "default") -> None:
        if asyncpg is None:  # pragma: no cover - exercised only without the extra
            raise VccError("the PostgreSQL sink needs asyncpg: pip install 'vccasync[postgres]'")
        if not account:
            raise VccError("account must be a non-empty name")
        self.dsn = dsn
        self.account = account
        self.written = 0
        self._conn: asyncpg.Connection | None = None

    def __repr__(self) -> str:
        return f"PostgresSink({redact_url(self.dsn)!r}, account={self.account!r})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def open(self) -> None:
        """Connect and create the tables if they are missing."""
        try:
            conn = await asyncpg.connect(self.dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            raise VccError(f"cannot connect to {redact_url(self.dsn)}: {exc}") from exc
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(SCHEMA)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        """Close the connection (an open transaction is rolled back) and release the lock."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close(timeout=5)
            except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError, TimeoutError):
                conn.terminate()  # the connection is already gone (the lease with it)

    async def hold(self, name: str, refusal: str) -> None:
        """Hold the advisory lock of ``name`` (any text naming one writer's lease) until
        :meth:`close`, on the writing connection itself (a session lock: a transaction's
        rollback never drops it), so that the lease and the writes go together: once that
        connection is gone, so is the lease, and nothing more is written. When another session
        holds it, ``InvalidRequestError(refusal)`` at once."""
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)
        if not await self.connection.fetchval("SELECT pg_try_advisory_lock($1)", key):
            raise InvalidRequestError(refusal)

    @property
    def connection(self) -> asyncpg.Connection:
        """The open connection."""
        if self._conn is None:
            raise VccError("use the sink inside 'async with PostgresSink(...) as sink:'")
        return self._conn

    async def begin(
        self, task: str, query: Mapping[str, Any], windows: Sequence[Window]
    ) -> list[tuple[Window, str | None]]:
        """The windows still to run for ``task``, each with its token (``[]`` once finished).

        On a first run ``windows`` are recorded as pending, all from the start. ``query``
        describes the search and must match what was recorded for ``task``.
        """
        conn = self.connection
        async with conn.transaction():
            created = await conn.fetchval(
                "INSERT INTO vccasync_tasks (account, task, query, windows_total)"
                " VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT DO NOTHING RETURNING true",
                self.account,
                task,
                _dumps(query),
                len(windows),
            )
            if created:
                await conn.executemany(
                    "INSERT INTO vccasync_windows (account, task, window_key) VALUES ($1, $2, $3)",
                    [(self.account, task, w.key) for w in windows],
                )
                return [(w, None) for w in windows]
            stored = await conn.fetchval(
                "SELECT query FROM vccasync_tasks WHERE account = $1 AND task = $2",
                self.account,
                task,
            )
            if json.loads(stored) != json.loads(_dumps(query)):
                raise VccError(
                    f"task {task!r} of account {self.account!r} was recorded with another"
                    f" query ({stored}): give this search another name"
                )
            rows = await conn.fetch(
                "SELECT window_key, token FROM vccasync_windows"
                " WHERE account = $1 AND task = $2 ORDER BY window_key",
                self.account,
                task,
            )
        return [(Window.from_key(r["window_key"]), r["token"]) for r in rows]

    async def adopt(self, task: str, query: Mapping[str, Any], legacy: Mapping[str, Any]) -> None:
        """Rename to ``task`` (recorded with ``query``) the task that older versions recorded
        for the same search with the ``legacy`` query (filters by the API's names), with its
        windows and counts; nothing when there is none, or ``task`` already exists."""
        conn = self.connection
        async with conn.transaction():
            old = await conn.fetchval(
                "SELECT task FROM vccasync_tasks WHERE account = $1 AND query = $2::jsonb",
                self.account,
                _dumps(legacy),
            )
            if old is None or old == task:
                return
            moved = await conn.fetchval(
                "INSERT INTO vccasync_tasks (account, task, query, windows_total, written,"
                " created_at, finished_at, resume) SELECT account, $3, $4::jsonb, windows_total,"
                " written, created_at, finished_at, resume FROM vccasync_tasks"
                " WHERE account = $1 AND task = $2 ON CONFLICT DO NOTHING RETURNING true",
                self.account,
                old,
                task,
                _dumps(query),
            )
            if moved:
                await conn.execute(
                    "UPDATE vccasync_windows SET task = $3 WHERE account = $1 AND task = $2",
                    self.account,
                    old,
                    task,
                )
                await conn.execute(
                    "DELETE FROM vccasync_tasks WHERE account = $1 AND task = $2", self.account, old
                )

    async def resumed(self, task: str) -> dict[str, Any]:
        """What ``task``'s split windows must re-cover (``Checkpoint.resume_state``), if any."""
        stored = await self.connection.fetchval(
            "SELECT resume FROM vccasync_tasks WHERE account = $1 AND task = $2",
            self.account,
            task,
        )
        return {} if stored is None else dict(json.loads(stored))

    async def totals(self, task: str) -> tuple[int, int]:
        """``(written, windows_total)`` of ``task`` so far, all runs together."""
        row = await self.connection.fetchrow(
            "SELECT written, windows_total FROM vccasync_tasks WHERE account = $1 AND task = $2",
            self.account,
            task,
        )
        return (0, 0) if row is None else (int(row["written"]), int(row["windows_total"]))

    async def write(self, task: str, page: Page, resume: Mapping[str, Any] | None = None) -> None:
        """Upsert ``page``'s interactions and advance ``task``'s checkpoint, atomically;
        ``resume`` (``Checkpoint.resume_state``) is stored with it when given. The writing
        connection holds the task's lease: once it is gone, ``LeaseLostError``, nothing
        written."""
        try:
            await self._write(task, page, resume)
        except CONNECTION_LOST as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise LeaseLostError(
                f"the lease of task {task} of account {self.account} on"
                f" {redact_url(self.dsn)} is lost (its connection ended: {reason}):"
                " stopped before writing"
            ) from None

    async def _write(self, task: str, page: Page, resume: Mapping[str, Any] | None) -> None:
        conn = self.connection
        key = page.window.key
        async with conn.transaction():
            if page.items:
                doc = _dumps([to_api(item) for item in page.items])
                await conn.execute(_UPSERT_INTERACTIONS, doc, self.account)
                guids = [item.guid for item in page.items]
                await conn.execute(DELETE_STALE_CONTENT, doc, guids)
                await conn.execute(UPSERT_CONTENT, doc)
            if page.last:
                await conn.execute(
                    "DELETE FROM vccasync_windows"
                    " WHERE account = $1 AND task = $2 AND window_key = $3",
                    self.account,
                    task,
                    key,
                )
            else:
                await conn.execute(
                    "UPDATE vccasync_windows SET token = $4"
                    " WHERE account = $1 AND task = $2 AND window_key = $3",
                    self.account,
                    task,
                    key,
                    page.next_token,
                )
            if page.spawned:
                await conn.executemany(
                    "INSERT INTO vccasync_windows (account, task, window_key) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING",
                    [(self.account, task, w.key) for w in page.spawned],
                )
            await conn.execute(
                "UPDATE vccasync_tasks SET written = written + $3, windows_total = windows_total"
                " + $4, finished_at = CASE WHEN $5 AND finished_at IS NULL AND NOT EXISTS"
                " (SELECT 1 FROM vccasync_windows w WHERE w.account = $1 AND w.task = $2)"
                " THEN now() ELSE finished_at END WHERE account = $1 AND task = $2",
                self.account,
                task,
                len(page.items),
                len(page.spawned),
                page.last,
            )
            if resume is not None:
                await conn.execute(
                    "UPDATE vccasync_tasks SET resume = $3::jsonb WHERE account = $1 AND task = $2",
                    self.account,
                    task,
                    _dumps(resume),
                )
        self.written += len(page.items)


class PostgresQuerySink(SinkContext):
    """One search into PostgreSQL as a ``Sink``; its checkpoint is kept in the database under
    ``checkpoint_name(query)``, shared by every run of the same search and account."""

    def __init__(self, sink: PostgresSink, task: str, checkpoint: Checkpoint) -> None:
        self._sink = sink
        self._task = task
        self._checkpoint = checkpoint

    def __repr__(self) -> str:
        return f"PostgresQuerySink({self.target!r}, account={self._sink.account!r})"

    @property
    def target(self) -> str:
        """The database URL without its password."""
        return redact_url(self._sink.dsn)

    @property
    def checkpoint(self) -> Checkpoint:
        """What has been written so far, all runs together."""
        return self._checkpoint

    @classmethod
    async def open(
        cls, url: str, query: SearchQuery, *, account: str = "default", overwrite: bool = False
    ) -> PostgresQuerySink:
        """Connect, create the tables if missing, and load (or start) the checkpoint."""
        fresh, task = Checkpoint.start(query), checkpoint_name(query)
        sink = PostgresSink(url, account=account)
        await sink.open()
        try:
            await sink.hold(
                f"vccasync task\x1f{account}\x1f{task}",
                f"another run of task {task} of account {account} is running on this database",
            )
            legacy = legacy_identity(query)
            if legacy != fresh.query:  # filters set: a checkpoint an older version keyed by
                await sink.adopt(task, fresh.query, legacy)  # the API's names becomes this one
            if overwrite:
                await sink.connection.execute(
                    "DELETE FROM vccasync_tasks WHERE account = $1 AND task = $2", account, task
                )
            pending = await sink.begin(task, fresh.query, [w for w, _ in fresh.plan()])
            written, total = await sink.totals(task)
            resumed = await sink.resumed(task)
        except BaseException:
            await sink.close()
            raise
        checkpoint = Checkpoint(fresh.query, {w.key: t for w, t in pending}, total, written)
        checkpoint.restore(resumed)
        return cls(sink, task, checkpoint)

    async def write(self, page: Page) -> None:
        """Write the page and its checkpoint (repairs included) in one transaction."""
        checkpoint = self._checkpoint
        with checkpoint.advancing(page) as changed:  # put back if the transaction is not made
            await self._sink.write(self._task, page, checkpoint.resume_state() if changed else None)

    async def close(self) -> None:
        """Close the connection."""
        await self._sink.close()
