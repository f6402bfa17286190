"""Rows of the dlt source: interactions, their removals and manifest entries (pure, no I/O).

An interaction row is the interaction's API JSON (:func:`vccasync.to_api`: camelCase names,
addresses as strings, unknown fields kept) with ``start`` and each piece's ``lastModified`` as
datetimes, plus ``account`` and ``removed_at``. dlt's normaliser names the columns in
snake_case and puts the ``content`` list in the nested table ``interactions__content`` (and
``handlingAgents`` in ``interactions__handling_agents``), linked by ``_dlt_parent_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from .._converter import structure_interaction, to_api
from .._instants import format_instant, parse_instant
from .._models import Interaction
from ..content._manifest import ManifestEntry

__all__ = [
    "INTERACTION_COLUMNS",
    "MANIFEST_COLUMNS",
    "interaction_from_row",
    "interaction_row",
    "manifest_row",
    "removal_row",
]

INTERACTION_COLUMNS: Final[dict[str, dict[str, Any]]] = {
    "guid": {"data_type": "text", "nullable": False},
    "start": {"data_type": "timestamp", "nullable": False},
    "account": {"data_type": "text", "nullable": False},
    "connect_from": {"data_type": "text"},
    "connect_to": {"data_type": "text"},
    "direction": {"data_type": "text"},
    "removed_at": {"data_type": "timestamp", "nullable": True},
}
"""Column hints of the ``interactions`` table (``removed_at`` gets ``hard_delete`` in the
hard mode); the other columns follow the data."""

MANIFEST_COLUMNS: Final[dict[str, dict[str, Any]]] = {
    "guid": {"data_type": "text", "nullable": False},
    "content_key": {"data_type": "text", "nullable": False},
    "account": {"data_type": "text", "nullable": False},
    "type": {"data_type": "text"},
    "content_type": {"data_type": "text"},
    "start": {"data_type": "timestamp"},
    "path": {"data_type": "text"},
    "bytes": {"data_type": "bigint"},
    "sha256": {"data_type": "text"},
    "last_modified": {"data_type": "timestamp"},
    "content_length": {"data_type": "bigint"},
    "etag": {"data_type": "text"},
    "http_last_modified": {"data_type": "text"},
}
"""Column hints of the ``content`` table: one row per archived piece, the manifest's fields
(``lastModified``, ``contentLength``, ``etag``, ``httpLastModified`` name the version held)."""


def interaction_row(item: Interaction, account: str) -> dict[str, Any]:
    """The row of a present interaction (``removed_at`` None)."""
    row = to_api(item)
    row["start"] = item.start
    row["content"] = [
        {**data, "lastModified": piece.last_modified} if piece.last_modified else data
        for data, piece in zip(row.get("content", ()), item.content, strict=True)
    ]
    row["account"] = account
    row["removed_at"] = None
    return row


def removal_row(
    guid: str,
    start: datetime,
    account: str,
    removed_at: datetime,
    last: Interaction | None = None,
) -> dict[str, Any]:
    """The row telling that ``guid`` is gone upstream since ``removed_at``: its last known
    version (``last``) kept with ``removed_at`` set (soft), or only the key (hard: the
    ``hard_delete`` hint on ``removed_at`` deletes the row and its nested rows)."""
    if last is None:
        return {"guid": guid, "start": start, "account": account, "removed_at": removed_at}
    return {**interaction_row(last, account), "removed_at": removed_at}


def interaction_from_row(row: Mapping[str, Any]) -> Interaction:
    """The interaction an :func:`interaction_row` was made of (what the downloads need)."""
    data = dict(row)
    data.pop("account", None)
    data.pop("removed_at", None)
    data["start"] = _text(data["start"])
    data["content"] = [
        {**piece, "lastModified": _text(piece["lastModified"])}
        if "lastModified" in piece
        else piece
        for piece in data.get("content", ())
    ]
    return structure_interaction(data)


def manifest_row(entry: ManifestEntry, account: str) -> dict[str, Any]:
    """A manifest entry as a ``content`` row (snake_case names, instants as datetimes)."""
    modified = entry.archived_modified
    return {
        "guid": entry.guid,
        "content_key": entry.content_key,
        "account": account,
        "type": entry.type,
        "content_type": entry.content_type,
        "start": parse_instant(entry.start),
        "path": entry.path,
        "bytes": entry.bytes,
        "sha256": entry.sha256,
        "last_modified": modified,
        "content_length": entry.content_length,
        "etag": entry.etag,
        "http_last_modified": entry.http_last_modified,
    }


def _text(value: Any) -> Any:
    return format_instant(value) if isinstance(value, datetime) else value
