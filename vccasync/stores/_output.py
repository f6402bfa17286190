"""Opening the sink an ``--output`` names, resumed from its checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from .._errors import InvalidRequestError
from .._query import MAX_LIMIT, SearchFilters, SearchQuery
from ._base import Sink
from ._contract import StoreOptions, SyncStore
from ._jsonl import JsonlSink, StdoutSink
from ._postgres import PostgresQuerySink, is_postgres_url
from ._registry import SQLITE_SUFFIXES, open_store
from ._sqlite import SqliteSink

__all__ = ["JSONL_SUFFIXES", "SQLITE_SUFFIXES", "SyncStore", "open_sink", "open_state"]

JSONL_SUFFIXES: Final = (".jsonl", ".ndjson")


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
    """The sync store ``target`` names (:func:`vccasync.stores._registry.open_store`), for a
    sync with the engine's ``filters``, rows under ``account``, no content queue."""
    return await open_store(target, StoreOptions(filters, limit, account=account))
