"""Reading a synced store (SQLite file or PostgreSQL URL) back for the sync tests."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import asyncpg
from attrs import frozen

__all__ = ["Row", "read_store"]


@frozen
class Row:
    """One stored interaction: its JSON, the keys of its content rows, the two timestamps."""

    data: dict[str, Any]
    content: tuple[str, ...]
    updated_at: Any
    removed_at: Any


def read_store(target: str) -> dict[str, Row]:
    """Every interaction of the store by guid."""
    if target.startswith("postgresql://"):
        return asyncio.run(_read_pg(target))
    with sqlite3.connect(target) as db:
        rows = db.execute("SELECT guid, json, updated_at, removed_at FROM interactions").fetchall()
        keys = db.execute("SELECT guid, content_key FROM content ORDER BY content_key").fetchall()
    content: dict[str, list[str]] = {}
    for guid, key in keys:
        content.setdefault(guid, []).append(key)
    return {
        guid: Row(json.loads(data), tuple(content.get(guid, ())), updated, removed)
        for guid, data, updated, removed in rows
    }


async def _read_pg(dsn: str) -> dict[str, Row]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT guid, data::text, updated_at, removed_at FROM interactions")
        keys = await conn.fetch("SELECT guid, content_key FROM content ORDER BY content_key")
    finally:
        await conn.close()
    content: dict[str, list[str]] = {}
    for guid, key in keys:
        content.setdefault(guid, []).append(key)
    return {
        r["guid"]: Row(
            json.loads(r["data"]),
            tuple(content.get(r["guid"], ())),
            r["updated_at"],
            r["removed_at"],
        )
        for r in rows
    }
