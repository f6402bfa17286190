"""Opening the sink an ``--output`` names, resumed from its checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ..errors import InvalidRequestError
from ..query import MAX_LIMIT, SearchFilters, SearchQuery
from .base import Sink
from .jsonl import JsonlSink, StdoutSink
from .postgres import PostgresQuerySink, is_postgres_url
from .postgres_changes import PostgresSyncState
from .sqlite import SqliteSink
from .sqlite_changes import SqliteSyncState

__all__ = ["JSONL_SUFFIXES", "SQLITE_SUFFIXES", "SyncStore", "open_sink", "open_state"]

SyncStore = SqliteSyncState | PostgresSyncState

JSONL_SUFFIXES: Final = (".jsonl", ".ndjson")
SQLITE_SUFFIXES: Final = (".sqlite", ".sqlite3", ".db")


async def open_sink(
    target: str, query: SearchQuery, *, overwrite: bool = False, account: str = "default"
) -> Sink:
    """The sink of ``target``: ``-`` (stdout), ``.jsonl``/``.ndjson``, ``.sqlite``/``.sqlite3``
    /``.db`` or a ``postgresql://`` URL (rows recorded under ``account``).

    Refuses (``InvalidRequestError``, before any request) an output it cannot write, an
    output kept for a different query, or a file it did not create, unless ``overwrite``.
    """
    if target == "-":
        return await StdoutSink.open(query)
    if is_postgres_url(target):
        return await PostgresQuerySink.open(target, query, account=account, overwrite=overwrite)
    suffix = Path(target).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return await JsonlSink.open(Path(target), query, overwrite=overwrite)
    if suffix in SQLITE_SUFFIXES:
        return await SqliteSink.open(Path(target), query, overwrite=overwrite)
    known = ", ".join((*JSONL_SUFFIXES, *SQLITE_SUFFIXES))
    raise InvalidRequestError(
        f"output {target!r}: the name must end with {known}, be a postgresql:// URL, or be '-'"
    )


async def open_state(
    target: str, filters: SearchFilters, limit: int = MAX_LIMIT, *, account: str = "default"
) -> SyncStore:
    """The sync state kept in ``target``: an SQLite file (``.sqlite``/``.sqlite3``/``.db``) or
    a ``postgresql://`` URL (rows under ``account``), for a sync with the engine's
    ``filters``. Anything else (JSONL, stdout) is refused: a sync updates rows in place."""
    if is_postgres_url(target):
        return await PostgresSyncState.connect(target, filters, limit, account=account)
    if Path(target).suffix.lower() in SQLITE_SUFFIXES:
        return await SqliteSyncState.open(Path(target), filters, limit)
    raise InvalidRequestError(
        f"sync output {target!r}: a sync updates and marks rows in place, so it needs an"
        f" SQLite file ({', '.join(SQLITE_SUFFIXES)}) or a postgresql:// URL, not JSONL or stdout"
    )
