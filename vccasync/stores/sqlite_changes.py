"""A sync's state in an SQLite store: rows upserted by guid, ``removed_at``, the pass checkpoint.

The ``interactions`` table keeps the fingerprint of each row's version; ``vccasync_sync``
keeps, per filter set, the span the store is complete over and the last pass (its span and,
while under way, its :class:`~vccasync.stores.checkpoint.Checkpoint`); ``vccasync_sync_seen``
the guids that pass has returned. Each page's new and changed rows, its seen guids and the
pass's checkpoint commit in one transaction, so a pass killed anywhere resumes where it stood:
nothing lost, nothing twice. Rows are judged removed only when the pass completes. Every call
blocks and runs on the state's own thread (:class:`SqliteSyncState`), off the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from ..converter import structure_interaction, to_api
from ..errors import InvalidRequestError
from ..jsonio import dumps, loads
from ..models import Interaction
from ..query import MAX_LIMIT, SearchFilters
from ..sync.diff import Known, Span
from ..sync.fingerprint import fingerprint
from ..sync.scope import floor_span, in_scope, pass_query, scope_key, span_from_text, span_to_text
from ..sync.state import Observed
from ..windows import Page, WindowPlan
from .base import SinkContext, cannot_write, lock, on_thread
from .checkpoint import Checkpoint
from .sqlite import content_rows, create_schema, interaction_row, utc_text

__all__ = ["SQLITE_SYNC_SCHEMA", "SqliteSyncFile", "SqliteSyncState"]

T = TypeVar("T")

SQLITE_SYNC_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS vccasync_sync (
    scope        TEXT PRIMARY KEY,  -- the filters, as sorted JSON
    covered_from TEXT,              -- the store is complete over [covered_from, covered_to]
    covered_to   TEXT,
    pass_from    TEXT,              -- the last pass (under way while checkpoint is set)
    pass_to      TEXT,
    checkpoint   TEXT               -- its windows still to fetch (NULL: pass complete)
);
CREATE TABLE IF NOT EXISTS vccasync_sync_seen (
    scope TEXT NOT NULL,
    guid  TEXT NOT NULL,
    PRIMARY KEY (scope, guid)
) WITHOUT ROWID;
"""

_UPSERT: Final = (
    "INSERT INTO interactions (guid, start, connect_from, connect_to, direction,"
    " handling_agents, json, updated_at, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (guid) DO UPDATE SET start = excluded.start,"
    " connect_from = excluded.connect_from, connect_to = excluded.connect_to,"
    " direction = excluded.direction, handling_agents = excluded.handling_agents,"
    " json = excluded.json, updated_at = excluded.updated_at,"
    " fingerprint = excluded.fingerprint, removed_at = NULL"
)


def known_row(guid: str, start: datetime, print_: bytes | None, data: str, gone: bool) -> Known:
    """A stored row as the engine knows it (the fingerprint computed when the row was written
    by a backfill, which keeps none)."""
    raw = data.encode()
    if print_ is None:
        print_ = fingerprint(structure_interaction(loads(raw)))
    return Known(guid, start, bytes(print_), raw, gone)


class SqliteSyncFile:
    """The blocking side of :class:`SqliteSyncState` (one connection, one thread)."""

    def __init__(self, path: Path, filters: SearchFilters, limit: int = MAX_LIMIT) -> None:
        self.target = str(path)
        self.path = path
        self.filters = filters
        self.limit = limit
        self.scope = scope_key(filters)
        self._checkpoint: Checkpoint | None = None
        self._lockfile: IO[bytes] | None = None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise cannot_write(path, exc) from None
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise cannot_write(path, exc) from None
            raise InvalidRequestError(f"{path} is not an SQLite database ({exc})") from None
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and not tables & {"vccasync_checkpoint", "vccasync_sync"}:
            raise InvalidRequestError(
                f"{self.path} is a database vccasync did not create: use another output"
            )
        self._lockfile = self.path.open("rb")
        lock(self._lockfile, self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # rows and checkpoint commit together
        with self._transaction():
            create_schema(db)
            for statement in SQLITE_SYNC_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO vccasync_sync (scope) VALUES (?)", (self.scope,))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _row(self) -> tuple[Any, ...]:
        return tuple(
            self._db.execute(
                "SELECT covered_from, covered_to, pass_from, pass_to, checkpoint"
                " FROM vccasync_sync WHERE scope = ?",
                (self.scope,),
            ).fetchone()
        )

    def coverage(self) -> Span | None:
        """The span complete over, for these filters."""
        start, end, *_ = self._row()
        return None if start is None else span_from_text(start, end)

    def begin(self, span: Span) -> tuple[Span, WindowPlan]:
        """Resume the pass under way of the same query, else open one over ``span``."""
        *_, pass_from, pass_to, stored = self._row()
        if pass_from is not None and stored is not None:
            resumed = span_from_text(pass_from, pass_to)
            checkpoint = Checkpoint.from_json(loads(stored))
            if checkpoint.matches(pass_query(resumed, self.filters, self.limit)):
                self._checkpoint = checkpoint
                return resumed, checkpoint.plan()
        span = floor_span(span)
        checkpoint = Checkpoint.start(pass_query(span, self.filters, self.limit))
        with self._transaction():
            self._db.execute("DELETE FROM vccasync_sync_seen WHERE scope = ?", (self.scope,))
            self._db.execute(
                "UPDATE vccasync_sync SET pass_from = ?, pass_to = ?, checkpoint = ?"
                " WHERE scope = ?",
                (*span_to_text(span), dumps(checkpoint.to_json()).decode(), self.scope),
            )
        self._checkpoint = checkpoint
        return span, checkpoint.plan()

    def last_pass(self) -> Span | None:
        """The span of the pass under way, else of the last complete one (None: no pass)."""
        *_, pass_from, pass_to, _ = self._row()
        return None if pass_from is None else span_from_text(pass_from, pass_to)

    def written(self, span: Span, since: datetime) -> list[Interaction]:
        """The present rows of ``span`` in these filters written at ``since`` or later."""
        rows = self._db.execute(
            "SELECT json FROM interactions WHERE start BETWEEN ? AND ? AND removed_at IS NULL"
            " AND updated_at >= ? ORDER BY start, guid",
            (utc_text(span.start), utc_text(span.end), utc_text(since)),
        )
        return [
            structure_interaction(loads(data)) for (data,) in rows if in_scope(data, self.scope)
        ]

    def known(self, guids: Collection[str]) -> dict[str, Known]:
        """The stored rows of ``guids``."""
        found: dict[str, Known] = {}
        unique = list(dict.fromkeys(guids))
        for at in range(0, len(unique), 500):
            chunk = unique[at : at + 500]
            marks = ", ".join("?" * len(chunk))
            for guid, start, print_, data, gone in self._db.execute(
                "SELECT guid, start, fingerprint, json, removed_at IS NOT NULL"
                f" FROM interactions WHERE guid IN ({marks})",
                chunk,
            ):
                found[guid] = known_row(guid, _instant(start), print_, data, bool(gone))
        return found

    def record(self, page: Page, observed: Sequence[Observed]) -> None:
        """Write the page's new and changed rows (and their content), the guids it returned
        and the pass's checkpoint, in one transaction."""
        checkpoint = self._checkpoint
        if checkpoint is None:
            raise InvalidRequestError("record() before begin()")
        db = self._db
        with self._transaction():
            self._write([seen for seen in observed if seen.kind is not None])
            db.executemany(
                "INSERT OR IGNORE INTO vccasync_sync_seen (scope, guid) VALUES (?, ?)",
                [(self.scope, item.guid) for item in page.items],
            )
            checkpoint.advance(page)
            db.execute(
                "UPDATE vccasync_sync SET checkpoint = ? WHERE scope = ?",
                (dumps(checkpoint.to_json()).decode(), self.scope),
            )

    def _write(self, observed: Sequence[Observed]) -> None:
        """Upsert these versions and their content (inside the caller's transaction)."""
        now = utc_text(datetime.now(UTC))
        rows: list[tuple[Any, ...]] = []
        content: list[tuple[Any, ...]] = []
        for seen in observed:
            item = seen.interaction
            api = to_api(item)
            rows.append((*interaction_row(item, api, now), seen.fingerprint))
            content.extend(content_rows(item, api))
        db = self._db
        db.executemany(_UPSERT, rows)
        db.executemany("DELETE FROM content WHERE guid = ?", [(row[0],) for row in rows])
        db.executemany(
            "INSERT OR REPLACE INTO content VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", content
        )

    def unseen(self, span: Span) -> list[Known]:
        """Present rows of ``span`` in these filters that this pass did not return."""
        rows = self._db.execute(
            "SELECT guid, start, fingerprint, json FROM interactions i"
            " WHERE start BETWEEN ? AND ? AND removed_at IS NULL AND NOT EXISTS"
            " (SELECT 1 FROM vccasync_sync_seen s WHERE s.scope = ? AND s.guid = i.guid)"
            " ORDER BY start, guid",
            (utc_text(span.start), utc_text(span.end), self.scope),
        )
        return [
            known_row(guid, _instant(start), print_, data, False)
            for guid, start, print_, data in rows
            if in_scope(data, self.scope)
        ]

    def finish(
        self, span: Span, gone: Sequence[str], keep_from: datetime, left: Sequence[Observed] = ()
    ) -> None:
        """Mark ``gone`` removed, write the current versions of ``left`` (rows that left the
        filters), extend the coverage, close the pass (its span stays, as the last pass's);
        one transaction."""
        old = self.coverage()
        covered = span if old is None else Span(min(old.start, span.start), span.end)
        now = utc_text(datetime.now(UTC))
        db = self._db
        with self._transaction():
            db.executemany(
                "UPDATE interactions SET removed_at = ? WHERE guid = ?", [(now, g) for g in gone]
            )
            self._write(left)
            db.execute("DELETE FROM vccasync_sync_seen WHERE scope = ?", (self.scope,))
            db.execute(
                "UPDATE vccasync_sync SET covered_from = ?, covered_to = ?, checkpoint = NULL"
                " WHERE scope = ?",
                (*span_to_text(covered), self.scope),
            )
        self._checkpoint = None

    def close(self) -> None:
        """Close the database and release its lock."""
        self._db.close()
        if self._lockfile is not None:
            self._lockfile.close()


class _Transaction:
    """``with``: BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class SqliteSyncState(SinkContext):
    """A :class:`~vccasync.sync.state.SyncState` over an SQLite store; every call runs on the
    state's own thread, one after another. ``async with`` closes it."""

    def __init__(self, store: SqliteSyncFile, thread: ThreadPoolExecutor) -> None:
        self._store = store
        self._thread = thread
        self.target = store.target

    @classmethod
    async def open(
        cls, path: Path, filters: SearchFilters, limit: int = MAX_LIMIT
    ) -> SqliteSyncState:
        """Open (creating or migrating) the store ``path`` for a sync with ``filters``."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vccasync-sync")
        try:
            store = await on_thread(thread, SqliteSyncFile, path, filters, limit)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(store, thread)

    async def _call(self, call: Callable[..., T], *args: Any) -> T:
        return await on_thread(self._thread, call, *args)

    async def coverage(self) -> Span | None:
        return await self._call(self._store.coverage)

    async def begin(self, span: Span) -> tuple[Span, WindowPlan | None]:
        return await self._call(self._store.begin, span)

    async def last_pass(self) -> Span | None:
        """The span of the pass under way, else of the last complete one (None: no pass)."""
        return await self._call(self._store.last_pass)

    async def written(self, span: Span, since: datetime) -> list[Interaction]:
        """The present rows of ``span`` in these filters written at ``since`` or later."""
        return await self._call(self._store.written, span, since)

    async def known(self, guids: Collection[str]) -> Mapping[str, Known]:
        return await self._call(self._store.known, guids)

    async def record(self, page: Page, observed: Sequence[Observed]) -> None:
        await self._call(self._store.record, page, observed)

    async def unseen(self, span: Span) -> list[Known]:
        return await self._call(self._store.unseen, span)

    async def finish(
        self, span: Span, gone: Sequence[str], keep_from: datetime, left: Sequence[Observed] = ()
    ) -> None:
        await self._call(self._store.finish, span, gone, keep_from, left)

    async def close(self) -> None:
        """Close the database after the calls under way."""
        try:
            await self._call(self._store.close)
        finally:
            self._thread.shutdown(wait=False)
