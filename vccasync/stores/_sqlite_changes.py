"""A sync's state in an SQLite store: rows upserted by guid, ``removed_at``, the pass checkpoint.

The ``interactions`` table keeps the fingerprint of each row's version; ``vccasync_sync``
keeps, per filter set, the span the store is complete over and the last pass (its span and,
while under way, its :class:`~vccasync.stores._checkpoint.Checkpoint`); ``vccasync_sync_seen``
the guids that pass has returned. Each page's new and changed rows, its seen guids and the
pass's checkpoint commit in one transaction, so a pass killed anywhere resumes where it stood:
nothing lost, nothing twice. Rows are judged removed only when the pass completes. Every call
blocks and runs on the state's own thread (:class:`SqliteSyncState`), off the event loop.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import attrs

from .._converter import structure_interaction, to_api
from .._errors import InvalidRequestError, LeaseLostError
from .._jsonio import dumps, loads
from .._query import MAX_LIMIT, NO_FILTERS, SearchFilters
from .._windows import Page, WindowPlan
from ..sync._diff import Known, Span
from ..sync._fingerprint import fingerprint
from ..sync._queue import QueuedPiece, QueueStatus, Settlement, backoff, plan_queue
from ..sync._scope import floor_span, in_scope, pass_query, scope_key, span_from_text, span_to_text
from ..sync._state import Observed
from ._base import SinkContext, cannot_write, lock, on_thread
from ._checkpoint import Checkpoint
from ._contract import Dropped, StoreOptions, SyncStore
from ._signal import QueueSignal
from ._sqlite import content_rows, create_schema, interaction_row, utc_text

__all__ = ["SQLITE_SYNC_SCHEMA", "SqliteSyncFile", "SqliteSyncState", "open_store", "pieces_due"]

T = TypeVar("T")

SQLITE_SYNC_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS vccasync_sync (
    scope        TEXT PRIMARY KEY,  -- the filters, as sorted JSON
    covered_from TEXT,              -- the store is complete over [covered_from, covered_to]
    covered_to   TEXT,
    pass_from    TEXT,              -- the last pass (under way while checkpoint is set)
    pass_to      TEXT,
    checkpoint   TEXT,              -- its windows still to fetch (NULL: pass complete)
    pass_began   TEXT               -- when it began: rows written since are not judged removed
);
CREATE TABLE IF NOT EXISTS vccasync_sync_seen (
    scope TEXT NOT NULL,
    guid  TEXT NOT NULL,
    PRIMARY KEY (scope, guid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vccasync_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL  -- the fencing token: each writer that opens the store bumps it
);
CREATE TABLE IF NOT EXISTS vccasync_content_queue (
    guid        TEXT NOT NULL,
    content_key TEXT NOT NULL,
    type        TEXT NOT NULL,
    version     TEXT NOT NULL,   -- vccasync.sync._queue.piece_version of the piece to download
    queued_at   TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    next_try    TEXT,            -- NULL: due now
    PRIMARY KEY (guid, content_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vccasync_content_queue_next ON vccasync_content_queue (next_try);
"""
# columns added after the first release of the sync tables (older stores gain them on open)
_ADDED_SYNC_COLUMNS: Final = {"pass_began": "TEXT"}

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
    """The blocking side of :class:`SqliteSyncState` (one connection, one thread).

    Opened for writing, it holds the file's lock and the store's writer lease: it bumps the
    lease's generation (the fencing token) and every write transaction checks, inside itself,
    that the generation is still its own and that ``path`` is still the file it opened;
    otherwise ``LeaseLostError`` and nothing is written. ``read_only``: no lock, no lease, no
    writes (``sync --status``).
    """

    def __init__(self, path: Path, options: StoreOptions) -> None:
        self.target = str(path)
        self.path = path
        self.options = options
        self.filters = options.filters
        self.limit = options.limit
        self.scope = scope_key(options.filters)
        self.dropped = Dropped()
        self._checkpoint: Checkpoint | None = None
        self._began: str | None = None
        self._token: int | None = None
        self._lockfile: IO[bytes] | None = None
        try:
            if options.read_only:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False
                )
            else:
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
        if self.options.read_only:
            self._tables = tables
            return
        self._lockfile = self.path.open("rb")
        lock(self._lockfile, self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # rows and checkpoint commit together
        with _Transaction(db):
            create_schema(db)
            for statement in SQLITE_SYNC_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            have = {row[1] for row in db.execute("PRAGMA table_info(vccasync_sync)")}
            for name, kind in _ADDED_SYNC_COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE vccasync_sync ADD COLUMN {name} {kind}")
            db.execute("INSERT OR IGNORE INTO vccasync_sync (scope) VALUES (?)", (self.scope,))
            db.execute(
                "INSERT INTO vccasync_lease (id, generation) VALUES (1, 1)"
                " ON CONFLICT (id) DO UPDATE SET generation = generation + 1"
            )
            self._token = int(db.execute("SELECT generation FROM vccasync_lease").fetchone()[0])
        self._tables = {"vccasync_sync", "vccasync_content_queue"}

    def _transaction(self) -> _Transaction:
        if self._token is None:
            raise InvalidRequestError(f"{self.target} is open read-only")
        return _Transaction(self._db, self._check_lease)

    def _check_lease(self) -> None:
        """Inside a write transaction: the lease is still this run's, else ``LeaseLostError``."""
        row = self._db.execute("SELECT generation FROM vccasync_lease WHERE id = 1").fetchone()
        moved = False
        if self._lockfile is not None:
            try:
                moved = os.stat(self.path).st_ino != os.fstat(self._lockfile.fileno()).st_ino
            except FileNotFoundError:
                moved = True
        if row is None or int(row[0]) != self._token or moved:
            why = "the file was replaced" if moved else "another writer took it"
            raise LeaseLostError(
                f"the writer lease of {self.target} is lost ({why}): stopped before writing"
            )

    def _row(self) -> tuple[Any, ...]:
        row = self._db.execute(
            "SELECT covered_from, covered_to, pass_from, pass_to, checkpoint, pass_began"
            " FROM vccasync_sync WHERE scope = ?",
            (self.scope,),
        ).fetchone()
        return (None,) * 6 if row is None else tuple(row)

    def coverage(self) -> Span | None:
        """The span complete over, for these filters."""
        start, end, *_ = self._row()
        return None if start is None else span_from_text(start, end)

    def begin(self, span: Span) -> tuple[Span, WindowPlan]:
        """Resume the pass under way of the same query, else open one over ``span``."""
        _, _, pass_from, pass_to, stored, began = self._row()
        if pass_from is not None and stored is not None:
            resumed = span_from_text(pass_from, pass_to)
            checkpoint = Checkpoint.from_json(loads(stored))
            if checkpoint.matches(pass_query(resumed, self.filters, self.limit)):
                if began is None:  # a pass begun by an older version: it begins now
                    began = utc_text(datetime.now(UTC))
                    with self._transaction():
                        self._db.execute(
                            "UPDATE vccasync_sync SET pass_began = ? WHERE scope = ?",
                            (began, self.scope),
                        )
                self._checkpoint, self._began = checkpoint, began
                return resumed, checkpoint.plan()
        span = floor_span(span)
        checkpoint = Checkpoint.start(pass_query(span, self.filters, self.limit))
        began = utc_text(datetime.now(UTC))
        with self._transaction():
            self._db.execute("DELETE FROM vccasync_sync_seen WHERE scope = ?", (self.scope,))
            self._db.execute(
                "UPDATE vccasync_sync SET pass_from = ?, pass_to = ?, checkpoint = ?,"
                " pass_began = ? WHERE scope = ?",
                (*span_to_text(span), dumps(checkpoint.to_json()).decode(), began, self.scope),
            )
        self._checkpoint, self._began = checkpoint, began
        return span, checkpoint.plan()

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

    def record(self, page: Page, observed: Sequence[Observed]) -> bool:
        """Write the page's new and changed rows (their content and pieces to download), the
        guids it returned and the pass's checkpoint, in one transaction; whether pieces were
        queued."""
        checkpoint = self._checkpoint
        if checkpoint is None:
            raise InvalidRequestError("record() before begin()")
        db = self._db
        with self._transaction():
            queued = self._write([seen for seen in observed if seen.kind is not None])
            db.executemany(
                "INSERT OR IGNORE INTO vccasync_sync_seen (scope, guid) VALUES (?, ?)",
                [(self.scope, item.guid) for item in page.items],
            )
            checkpoint.advance(page)
            db.execute(
                "UPDATE vccasync_sync SET checkpoint = ? WHERE scope = ?",
                (dumps(checkpoint.to_json()).decode(), self.scope),
            )
        return queued

    def _write(self, observed: Sequence[Observed]) -> bool:
        """Upsert these versions, their content and their queue rows (inside the caller's
        transaction); whether pieces were queued."""
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
        return self._queue(observed, now)

    def _queue(self, observed: Sequence[Observed], now: str) -> bool:
        if self.options.content is None or not observed:
            return False
        db = self._db
        existing: dict[tuple[str, str], str] = {}
        guids = [seen.interaction.guid for seen in observed]
        for at in range(0, len(guids), 500):
            chunk = guids[at : at + 500]
            marks = ", ".join("?" * len(chunk))
            for guid, key, version in db.execute(
                "SELECT guid, content_key, version FROM vccasync_content_queue"
                f" WHERE guid IN ({marks})",
                chunk,
            ):
                existing[(guid, key)] = version
        plan = plan_queue(
            existing,
            [(seen.interaction, seen.pieces) for seen in observed],
            self.options.download_types,  # a sync owes the pieces of the types it downloads
        )
        db.executemany(
            "DELETE FROM vccasync_content_queue WHERE guid = ? AND content_key = ?", plan.deletes
        )
        db.executemany(
            "INSERT INTO vccasync_content_queue (guid, content_key, type, version, queued_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guid, content_key) DO UPDATE SET"
            " type = excluded.type, version = excluded.version, attempts = 0,"
            " last_error = NULL, next_try = NULL",
            [(*row, now) for row in plan.upserts],
        )
        self.dropped = Dropped(
            self.dropped.superseded + plan.superseded, self.dropped.gone + plan.gone
        )
        return bool(plan.upserts)

    def unseen(self, span: Span) -> list[Known]:
        """Present rows of ``span`` in these filters that this pass did not return, among
        those the store held when the pass began (a row written since, by another writer,
        is current: never judged here)."""
        rows = self._db.execute(
            "SELECT guid, start, fingerprint, json FROM interactions i"
            " WHERE start BETWEEN ? AND ? AND removed_at IS NULL"
            " AND (updated_at IS NULL OR ? IS NULL OR updated_at < ?) AND NOT EXISTS"
            " (SELECT 1 FROM vccasync_sync_seen s WHERE s.scope = ? AND s.guid = i.guid)"
            " ORDER BY start, guid",
            (utc_text(span.start), utc_text(span.end), self._began, self._began, self.scope),
        )
        return [
            known_row(guid, _instant(start), print_, data, False)
            for guid, start, print_, data in rows
            if in_scope(data, self.scope)
        ]

    def finish(
        self, span: Span, gone: Sequence[str], keep_from: datetime, left: Sequence[Observed] = ()
    ) -> None:
        """Mark ``gone`` removed (their queued pieces leave the queue), write the current
        versions of ``left`` (rows that left the filters), extend the coverage, close the pass
        (its span stays, as the last pass's); one transaction."""
        old = self.coverage()
        covered = span if old is None else Span(min(old.start, span.start), span.end)
        now = utc_text(datetime.now(UTC))
        db = self._db
        with self._transaction():
            db.executemany(
                "UPDATE interactions SET removed_at = ? WHERE guid = ?", [(now, g) for g in gone]
            )
            dropped = 0
            for guid in gone:
                dropped += db.execute(
                    "DELETE FROM vccasync_content_queue WHERE guid = ?", (guid,)
                ).rowcount
            self._write(left)
            db.execute("DELETE FROM vccasync_sync_seen WHERE scope = ?", (self.scope,))
            db.execute(
                "UPDATE vccasync_sync SET covered_from = ?, covered_to = ?, checkpoint = NULL"
                " WHERE scope = ?",
                (*span_to_text(covered), self.scope),
            )
        self.dropped = attrs.evolve(self.dropped, gone=self.dropped.gone + dropped)
        self._checkpoint = None

    def due(
        self, now: datetime, limit: int, skip: Collection[tuple[str, str]] = ()
    ) -> list[QueuedPiece]:
        """Queued pieces due at ``now`` (see :class:`~vccasync.stores._contract.SyncStore`)."""
        types = self.options.download_types
        where = "" if types is None else f" AND q.type IN ({', '.join('?' * len(types))})"
        rows = self._db.execute(
            "SELECT q.guid, q.content_key, q.version, q.attempts, i.json, i.removed_at"
            " FROM vccasync_content_queue q LEFT JOIN interactions i ON i.guid = q.guid"
            f" WHERE (q.next_try IS NULL OR q.next_try <= ?){where}"
            " ORDER BY q.next_try IS NOT NULL, q.next_try, q.queued_at LIMIT ?",
            (utc_text(now), *sorted(types or ()), limit + len(skip)),
        ).fetchall()
        taken, stale = pieces_due(rows, skip, limit)
        if stale:
            with self._transaction():
                self._db.executemany(
                    "DELETE FROM vccasync_content_queue WHERE guid = ? AND content_key = ?",
                    stale,
                )
            self.dropped = attrs.evolve(self.dropped, gone=self.dropped.gone + len(stale))
        return taken

    def settle(self, outcomes: Sequence[Settlement], now: datetime) -> None:
        """Record downloads' outcomes (see :class:`~vccasync.stores._contract.SyncStore`)."""
        db = self._db
        gone = 0
        with self._transaction():
            for done in outcomes:
                key = (done.guid, done.content_key, done.version)
                if done.error is None or done.gone:
                    deleted = db.execute(
                        "DELETE FROM vccasync_content_queue"
                        " WHERE guid = ? AND content_key = ? AND version = ?",
                        key,
                    ).rowcount
                    gone += deleted if done.gone else 0
                    continue
                row = db.execute(
                    "SELECT attempts FROM vccasync_content_queue"
                    " WHERE guid = ? AND content_key = ? AND version = ?",
                    key,
                ).fetchone()
                if row is None:
                    continue
                attempts = int(row[0]) + 1
                db.execute(
                    "UPDATE vccasync_content_queue SET attempts = ?, last_error = ?,"
                    " next_try = ? WHERE guid = ? AND content_key = ? AND version = ?",
                    (attempts, done.error[:500], utc_text(now + backoff(attempts)), *key),
                )
        self.dropped = attrs.evolve(self.dropped, gone=self.dropped.gone + gone)

    def queue_status(self) -> QueueStatus:
        """The queue's depth, failed rows, oldest queued instant, earliest retry."""
        if "vccasync_content_queue" not in self._tables:
            return QueueStatus(0, 0, None, None)
        depth, failed, oldest, retry = self._db.execute(
            "SELECT count(*), count(*) FILTER (WHERE attempts > 0), min(queued_at),"
            " min(next_try) FILTER (WHERE attempts > 0) FROM vccasync_content_queue"
        ).fetchone()
        return QueueStatus(
            int(depth),
            int(failed),
            None if oldest is None else _instant(oldest),
            None if retry is None else _instant(retry),
        )

    def status(self) -> list[tuple[str, Span | None]]:
        """Every filter set kept in the store, with its coverage."""
        if "vccasync_sync" not in self._tables:
            return []
        rows = self._db.execute(
            "SELECT scope, covered_from, covered_to FROM vccasync_sync ORDER BY scope"
        )
        return [
            (scope, None if start is None else span_from_text(start, end))
            for scope, start, end in rows
        ]

    def close(self) -> None:
        """Close the database and release its lock."""
        self._db.close()
        if self._lockfile is not None:
            self._lockfile.close()


def pieces_due(
    rows: Sequence[tuple[Any, ...]], skip: Collection[tuple[str, str]], limit: int
) -> tuple[list[QueuedPiece], list[tuple[str, str]]]:
    """From queue rows ``(guid, key, version, attempts, interaction JSON, removed)``: up to
    ``limit`` pieces to download (not in ``skip``), and the ``(guid, key)`` of rows whose
    interaction is gone or removed or no longer has the piece (to drop)."""
    taken: list[QueuedPiece] = []
    stale: list[tuple[str, str]] = []
    for guid, key, version, attempts, data, removed_at in rows:
        if (guid, key) in skip:
            continue
        if data is None or removed_at is not None:
            stale.append((guid, key))
            continue
        item = structure_interaction(loads(data if isinstance(data, bytes) else data.encode()))
        piece = next((p for p in item.content if p.content_key == key), None)
        if piece is None:
            stale.append((guid, key))
            continue
        if len(taken) < limit:
            taken.append(QueuedPiece(attrs.evolve(item, content=(piece,)), version, int(attempts)))
    return taken, stale


class _Transaction:
    """``with``: BEGIN IMMEDIATE (then ``check``, inside it), then COMMIT, or ROLLBACK on any
    exception."""

    def __init__(self, db: sqlite3.Connection, check: Callable[[], None] | None = None) -> None:
        self._db = db
        self._check = check

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        if self._check is not None:
            try:
                self._check()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class SqliteSyncState(SinkContext, QueueSignal):
    """A :class:`~vccasync.stores._contract.SyncStore` over an SQLite file; every call runs on
    the state's own thread, one after another. ``async with`` closes it."""

    def __init__(self, store: SqliteSyncFile, thread: ThreadPoolExecutor) -> None:
        QueueSignal.__init__(self)
        self._store = store
        self._thread = thread
        self.target = store.target

    @classmethod
    async def open(
        cls, path: Path, filters: SearchFilters | StoreOptions = NO_FILTERS, limit: int = MAX_LIMIT
    ) -> SqliteSyncState:
        """Open (creating or migrating) the store ``path`` for a sync with ``filters`` (or the
        whole :class:`~vccasync.stores._contract.StoreOptions`)."""
        options = filters if isinstance(filters, StoreOptions) else StoreOptions(filters, limit)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vccasync-sync")
        try:
            store = await on_thread(thread, SqliteSyncFile, path, options)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(store, thread)

    async def _call(self, call: Callable[..., T], *args: Any) -> T:
        return await on_thread(self._thread, call, *args)

    @property
    def dropped(self) -> Dropped:
        """Queue rows dropped by this run (superseded or gone)."""
        return self._store.dropped

    async def coverage(self) -> Span | None:
        return await self._call(self._store.coverage)

    async def begin(self, span: Span) -> tuple[Span, WindowPlan | None]:
        return await self._call(self._store.begin, span)

    async def known(self, guids: Collection[str]) -> Mapping[str, Known]:
        return await self._call(self._store.known, guids)

    async def record(self, page: Page, observed: Sequence[Observed]) -> None:
        if await self._call(self._store.record, page, observed):
            self.queued()

    async def unseen(self, span: Span) -> list[Known]:
        return await self._call(self._store.unseen, span)

    async def finish(
        self, span: Span, gone: Sequence[str], keep_from: datetime, left: Sequence[Observed] = ()
    ) -> None:
        await self._call(self._store.finish, span, gone, keep_from, left)

    async def due(
        self, now: datetime, limit: int, skip: Collection[tuple[str, str]] = ()
    ) -> list[QueuedPiece]:
        return await self._call(self._store.due, now, limit, frozenset(skip))

    async def settle(self, outcomes: Sequence[Settlement], now: datetime) -> None:
        await self._call(self._store.settle, list(outcomes), now)

    async def queue_status(self) -> QueueStatus:
        return await self._call(self._store.queue_status)

    async def status(self) -> list[tuple[str, Span | None]]:
        return await self._call(self._store.status)

    async def close(self) -> None:
        """Close the database after the calls under way."""
        try:
            await self._call(self._store.close)
        finally:
            self._thread.shutdown(wait=False)


async def open_store(target: str, options: StoreOptions) -> SyncStore:
    """The registry's opener (:mod:`vccasync.stores._registry`); its return type makes mypy
    check that the class keeps the whole contract."""
    return await SqliteSyncState.open(Path(target), options)
