"""Where backfills go: JSONL and SQLite, each writing a page and its checkpoint together.

``open_sink(target, query, overwrite=...)`` picks the sink from the name (``-`` is stdout,
``.jsonl``/``.ndjson`` JSON lines, ``.sqlite``/``.sqlite3``/``.db`` SQLite) and resumes the
checkpoint stored with it. Every page is written with its checkpoint so that a run killed
at any moment resumes without losing or repeating an interaction:

- SQLite: the rows and the checkpoint are one transaction (WAL mode); rows are upserted on
  ``guid``.
- JSONL: the lines are appended, flushed and fsynced, then the checkpoint (with the file's
  length) replaces the old one atomically (``FILE.checkpoint.json``); on resume the file is cut
  back to that length before appending.
- stdout: no checkpoint (nothing to resume into).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol

from ..converter import loads, to_api
from ..errors import InvalidRequestError
from ..models import Interaction
from ..query import SearchQuery
from ..search import Page
from .checkpoint import Checkpoint

try:  # flock keeps two runs from writing one output (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

try:
    import orjson

    _dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - exercised only without the extra

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


__all__ = [
    "JSONL_SUFFIXES",
    "SQLITE_SCHEMA",
    "SQLITE_SUFFIXES",
    "JsonlSink",
    "Sink",
    "SqliteSink",
    "StdoutSink",
    "checkpoint_path",
    "open_sink",
]

JSONL_SUFFIXES: Final = (".jsonl", ".ndjson")
SQLITE_SUFFIXES: Final = (".sqlite", ".sqlite3", ".db")

SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS interactions (
    guid            TEXT PRIMARY KEY,
    start           TEXT NOT NULL,  -- UTC, YYYY-MM-DDTHH:MM:SS.sssZ (fixed width: sorts in time)
    connect_from    TEXT,
    connect_to      TEXT,
    direction       TEXT,
    handling_agents TEXT NOT NULL,  -- JSON array of agent ids
    json            TEXT NOT NULL   -- the interaction in the API's JSON shape
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


class Sink(Protocol):
    """Where pages go. ``checkpoint`` is what has been written (resumed state included)."""

    checkpoint: Checkpoint
    target: str

    def write_page(self, page: Page) -> None:
        """Write the page's interactions and advance the checkpoint, as one step."""

    def close(self) -> None:
        """Release the output."""


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """Where the checkpoint of a JSONL output lives: beside it."""
    return Path(f"{os.fspath(path)}.checkpoint.json")


def open_sink(target: str, query: SearchQuery, *, overwrite: bool = False) -> Sink:
    """The sink for ``target``, resumed from its checkpoint.

    Refuses (``InvalidRequestError``, before any request) an output it cannot write, an
    output kept for a different query, or a file it did not create, unless ``overwrite``.
    """
    if target == "-":
        return StdoutSink(query)
    suffix = Path(target).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return JsonlSink(Path(target), query, overwrite=overwrite)
    if suffix in SQLITE_SUFFIXES:
        return SqliteSink(Path(target), query, overwrite=overwrite)
    known = ", ".join((*JSONL_SUFFIXES, *SQLITE_SUFFIXES))
    raise InvalidRequestError(f"output {target!r}: the name must end with {known}, or be '-'")


def _refuse_other_query(target: Path, stored: Checkpoint, query: SearchQuery) -> None:
    if not stored.matches(query):
        theirs = " ".join(f"{k}={v}" for k, v in stored.query.items())
        raise InvalidRequestError(
            f"{target} holds a different backfill ({theirs}): use the same query to resume,"
            " another output, or --overwrite to start again"
        )


def _cannot_write(target: Path, exc: OSError | sqlite3.Error) -> InvalidRequestError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return InvalidRequestError(f"cannot write {target}: {reason}")


def _lock(handle: IO[bytes], target: Path) -> None:
    if fcntl is None:  # pragma: no cover - Windows
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise InvalidRequestError(f"{target} is being written by another vccasync run") from None


def _api_line(item: Interaction) -> bytes:
    return _dumps(to_api(item)) + b"\n"


class StdoutSink:
    """JSON lines on standard output; nothing to resume."""

    def __init__(self, query: SearchQuery, stream: IO[bytes] | None = None) -> None:
        self.target = "stdout"
        self.checkpoint = Checkpoint.start(query)
        self._stream = stream if stream is not None else sys.stdout.buffer

    def write_page(self, page: Page) -> None:
        self._stream.write(b"".join(_api_line(item) for item in page.items))
        self._stream.flush()
        self.checkpoint.advance(page)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.flush()


class JsonlSink:
    """One interaction a line in the API's JSON shape, with ``FILE.checkpoint.json`` beside."""

    def __init__(self, path: Path, query: SearchQuery, *, overwrite: bool = False) -> None:
        self.target = str(path)
        self.path = path
        self.checkpoint_file = checkpoint_path(path)
        try:
            self.checkpoint, self._file = self._open(query, overwrite)
        except OSError as exc:
            raise _cannot_write(path, exc) from None

    def _open(self, query: SearchQuery, overwrite: bool) -> tuple[Checkpoint, IO[bytes]]:
        handle = open(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666), "r+b")  # noqa: SIM115
        try:
            _lock(handle, self.path)
            size = handle.seek(0, os.SEEK_END)
            stored = None if overwrite else self._load()
            if stored is None:
                if size and not overwrite:
                    raise InvalidRequestError(
                        f"{self.path} exists and was not written by vccasync (no"
                        f" {self.checkpoint_file.name}): use --overwrite to replace it"
                    )
                checkpoint, length = Checkpoint.start(query), 0
            else:
                checkpoint, length = stored
                _refuse_other_query(self.path, checkpoint, query)
                if size < length:
                    raise InvalidRequestError(
                        f"{self.path} is shorter ({size} bytes) than its checkpoint says"
                        f" ({length}): it was changed outside vccasync; use --overwrite to"
                        " start again"
                    )
            self._save(checkpoint, length)  # before any request: the folder is writable
            handle.truncate(length)  # drop whatever was written after the last checkpoint
            handle.seek(length)
        except BaseException:
            handle.close()
            raise
        return checkpoint, handle

    def _load(self) -> tuple[Checkpoint, int] | None:
        try:
            raw = self.checkpoint_file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = loads(raw)
            return Checkpoint.from_json(data), int(data["output_bytes"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequestError(
                f"{self.checkpoint_file} is damaged ({exc}): use --overwrite to start again"
            ) from None

    def _save(self, checkpoint: Checkpoint, length: int) -> None:
        data = _dumps({**checkpoint.to_json(), "output_bytes": length})
        folder = self.checkpoint_file.parent
        fd, temp = tempfile.mkstemp(prefix=self.checkpoint_file.name, suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.checkpoint_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def write_page(self, page: Page) -> None:
        if page.items:
            self._file.write(b"".join(_api_line(item) for item in page.items))
            self._file.flush()
            os.fsync(self._file.fileno())
        self.checkpoint.advance(page)
        self._save(self.checkpoint, self._file.tell())

    def close(self) -> None:
        self._file.close()


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _content_rows(item: Interaction, api: dict[str, Any]) -> Iterable[tuple[Any, ...]]:
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
            _dumps(raw).decode(),
        )


class SqliteSink:
    """An SQLite database: ``interactions`` keyed by guid, ``content``, and the checkpoint."""

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
            raise _cannot_write(path, exc) from None
        try:
            self.checkpoint = self._open(query)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise _cannot_write(path, exc) from None
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
        _lock(self._lockfile, self.path)
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
            _refuse_other_query(self.path, checkpoint, query)
        else:
            checkpoint = Checkpoint.start(query)
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in SQLITE_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
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
            (_dumps(checkpoint.to_json()).decode(),),
        )

    def write_page(self, page: Page) -> None:
        rows: list[tuple[Any, ...]] = []
        content: list[tuple[Any, ...]] = []
        for item in page.items:
            api = to_api(item)
            rows.append(
                (
                    item.guid,
                    _utc(item.start),
                    item.connect_from,
                    item.connect_to,
                    None if item.direction is None else str(item.direction),
                    _dumps([agent.id for agent in item.handling_agents]).decode(),
                    _dumps(api).decode(),
                )
            )
            content.extend(_content_rows(item, api))
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO interactions VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guid) DO"
                " UPDATE SET start = excluded.start, connect_from = excluded.connect_from,"
                " connect_to = excluded.connect_to, direction = excluded.direction,"
                " handling_agents = excluded.handling_agents, json = excluded.json",
                rows,
            )
            db.executemany("DELETE FROM content WHERE guid = ?", [(row[0],) for row in rows])
            db.executemany(
                "INSERT OR REPLACE INTO content VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", content
            )
            self.checkpoint.advance(page)
            self._store(self.checkpoint)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()
        if self._lockfile is not None:
            self._lockfile.close()
