"""SQLite: interactions upserted on ``guid``, content, and the checkpoint in one database.

Every page is one transaction holding its rows and the checkpoint they reach (WAL mode), so a
run killed at any moment resumes without losing or repeating an interaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from .._converter import to_api
from .._errors import InvalidRequestError
from .._jsonio import loads
from .._models import Interaction
from .._query import SearchQuery
from .._windows import Page
from ._base import ThreadedSink, cannot_write, dumps, lock, refuse_other_query
from ._checkpoint import Checkpoint

__all__ = [
    "SQLITE_SCHEMA",
    "SqliteFile",
    "SqliteSink",
    "content_rows",
    "create_schema",
    "interaction_row",
    "utc_text",
]

SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS interactions (
    guid            TEXT PRIMARY KEY,
    start           TEXT NOT NULL,  -- UTC, YYYY-MM-DDTHH:MM:SS.sssZ (fixed width: sorts in time)
    connect_from    TEXT,
    connect_to      TEXT,
    direction       TEXT,
    handling_agents TEXT NOT NULL,  -- JSON array of agent ids
    json            TEXT NOT NULL,  -- the interaction in the API's JSON shape
    fingerprint     BLOB,           -- of the version in json, written by sync (NULL: compute)
    updated_at      TEXT,           -- when json last took a new version (UTC, as start)
    removed_at      TEXT            -- when a sync found it gone upstream (NULL while present)
);
CREATE INDEX IF NOT EXISTS interactions_start ON interactions (start);
CREATE TABLE IF NOT EXISTS content (
    guid                       TEXT NOT NULL REFERENCES interactions (guid),
    content_key                TEXT NOT NULL,
    type                       TEXT NOT NULL,
    content_type               TEXT,
    content_length             INTEGER,
    last_modified              TEXT,
    owning_agent_id            TEXT,
    owning_interaction_plan_id TEXT,
    duration_ms                INTEGER,
    json                       TEXT NOT NULL,  -- the content item in the API's JSON shape
    PRIMARY KEY (guid, content_key)
);
CREATE INDEX IF NOT EXISTS content_type ON content (type);
CREATE TABLE IF NOT EXISTS vccasync_checkpoint (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);
"""


# columns added after the first release: stores written by older versions gain them on open
_ADDED_COLUMNS: Final = {"fingerprint": "BLOB", "updated_at": "TEXT", "removed_at": "TEXT"}
_INTERACTION_COLUMNS: Final = (
    "guid, start, connect_from, connect_to, direction, handling_agents, json, updated_at"
)


def create_schema(db: sqlite3.Connection) -> None:
    """Create the tables if missing and add the columns older versions lacked (inside the
    caller's transaction)."""
    for statement in SQLITE_SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    have = {row[1] for row in db.execute("PRAGMA table_info(interactions)")}
    for name, kind in _ADDED_COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE interactions ADD COLUMN {name} {kind}")


def utc_text(moment: datetime) -> str:
    """An instant as the tables keep it: UTC, fixed width, milliseconds (sorts in time)."""
    return _utc(moment) or ""


def interaction_row(item: Interaction, api: dict[str, Any], now: str) -> tuple[Any, ...]:
    """The ``interactions`` row of ``item`` (``api``: its API JSON) written at ``now``, in
    the order of the columns guid .. json, updated_at."""
    return (
        item.guid,
        _utc(item.start),
        item.connect_from,
        item.connect_to,
        None if item.direction is None else str(item.direction),
        dumps([agent.id for agent in item.handling_agents]).decode(),
        dumps(api).decode(),
        now,
    )


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def content_rows(item: Interaction, api: dict[str, Any]) -> Iterable[tuple[Any, ...]]:
    for content, raw in zip(item.content, api.get("content") or (), strict=True):
        duration = content.properties.duration
        yield (
            item.guid,
            content.content_key,
            str(content.type),
            content.content_type,
            content.content_length,
            _utc(content.last_modified),
            content.owning_agent.id if content.owning_agent else None,
            content.owning_interaction_plan.id if content.owning_interaction_plan else None,
            None if duration is None else round(duration.total_seconds() * 1000),
            dumps(raw).decode(),
        )


class SqliteFile:
    """An SQLite database: ``interactions`` keyed by guid, ``content``, and the checkpoint;
    every call blocks (see ``SqliteSink``)."""

    def __init__(self, path: Path, query: SearchQuery, *, overwrite: bool = False) -> None:
        self.target = str(path)
        self.path = path
        self._lockfile: IO[bytes] | None = None
        try:
            if overwrite:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise cannot_write(path, exc) from None
        try:
            self.checkpoint = self._open(query)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise cannot_write(path, exc) from None
            raise InvalidRequestError(
                f"{path} is not an SQLite database ({exc}): use --overwrite to replace it"
            ) from None
        except BaseException:
            self.close()
            raise

    def _open(self, query: SearchQuery) -> Checkpoint:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        self._lockfile = self.path.open("rb")
        lock(self._lockfile, self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "PRAGMA synchronous=NORMAL"
        )  # rows and checkpoint commit (or roll back) together
        if tables and "vccasync_checkpoint" not in tables:
            raise InvalidRequestError(
                f"{self.path} is a database vccasync did not create: use another output,"
                " or --overwrite to replace it"
            )
        row = db.execute("SELECT state FROM vccasync_checkpoint").fetchone() if tables else None
        if row is not None:
            checkpoint = Checkpoint.from_json(loads(row[0]))
            refuse_other_query(self.path, checkpoint, query)
        else:
            checkpoint = Checkpoint.start(query)
        db.execute("BEGIN IMMEDIATE")
        try:
            create_schema(db)
            self._store(checkpoint)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return checkpoint

    def _store(self, checkpoint: Checkpoint) -> None:
        self._db.execute(
            "INSERT INTO vccasync_checkpoint (id, state) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            (dumps(checkpoint.to_json()).decode(),),
        )

    def write_page(self, page: Page) -> None:
        """Upsert the page's rows and store the checkpoint in one transaction."""
        rows: list[tuple[Any, ...]] = []
        content: list[tuple[Any, ...]] = []
        now = utc_text(datetime.now(UTC))
        for item in page.items:
            api = to_api(item)
            rows.append(interaction_row(item, api, now))
            content.extend(content_rows(item, api))
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                f"INSERT INTO interactions ({_INTERACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (guid) DO UPDATE SET start = excluded.start,"
                " connect_from = excluded.connect_from, connect_to = excluded.connect_to,"
                " direction = excluded.direction, handling_agents = excluded.handling_agents,"
                " json = excluded.json, removed_at = NULL, fingerprint = CASE WHEN json IS"
                " excluded.json THEN fingerprint END, updated_at = CASE WHEN json IS"
                " excluded.json THEN updated_at ELSE excluded.updated_at END",
                rows,
            )
            db.executemany("DELETE FROM content WHERE guid = ?", [(row[0],) for row in rows])
            db.executemany(
                "INSERT OR REPLACE INTO content VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", content
            )
            with self.checkpoint.advancing(page):  # put back if the commit is not made
                self._store(self.checkpoint)
                db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the database and release its lock."""
        self._db.close()
        if self._lockfile is not None:
            self._lockfile.close()


class SqliteSink(ThreadedSink):
    """An SQLite database written off the event loop (see ``SqliteFile``)."""

    @classmethod
    async def open(cls, path: Path, query: SearchQuery, *, overwrite: bool = False) -> SqliteSink:
        """Open (or resume) the database ``path``; refusals raise ``InvalidRequestError``."""
        return await cls.start(lambda: SqliteFile(path, query, overwrite=overwrite))
