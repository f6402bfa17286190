"""Which :class:`~vccasync.stores._contract.SyncStore` an ``--output`` names: the one place a
sync store is chosen.

Each backend registers a name, a test of the target (a URL scheme, a file suffix) and where
its opener lives (``module:function``, imported only when used, so that an optional driver is
needed only by those who use it). The opener is called as ``opener(target, options)`` and
returns an open store. A new backend is one module plus one :func:`register` line below.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from attrs import frozen

from .._errors import InvalidRequestError
from ._contract import StoreOptions, SyncStore

__all__ = ["SQLITE_SUFFIXES", "Backend", "backend_for", "open_store", "register", "store_exists"]

SQLITE_SUFFIXES: Final = (".sqlite", ".sqlite3", ".db")
Opener = Callable[[str, StoreOptions], Awaitable[SyncStore]]


@frozen
class Backend:
    """A kind of sync store: ``name``, ``matches(target)``, ``opener`` (``module:function``),
    ``local``: a file (it exists or not before opening), ``example`` for messages."""

    name: str
    matches: Callable[[str], bool]
    opener: str
    local: bool
    example: str

    def open(self, target: str, options: StoreOptions) -> Awaitable[SyncStore]:
        """Open ``target`` with ``options`` (imports the backend's module)."""
        module, _, function = self.opener.partition(":")
        call: Opener = getattr(importlib.import_module(module), function)
        return call(target, options)


_BACKENDS: list[Backend] = []


def register(backend: Backend) -> None:
    """Add a backend (tried in registration order)."""
    _BACKENDS.append(backend)


def backend_for(target: str) -> Backend:
    """The backend of ``target``, else ``InvalidRequestError`` naming those there are."""
    for backend in _BACKENDS:
        if backend.matches(target):
            return backend
    kinds = ", ".join(backend.example for backend in _BACKENDS)
    raise InvalidRequestError(
        f"sync output {target!r}: a sync updates and marks rows in place, so it needs {kinds};"
        " not JSONL or stdout"
    )


def store_exists(target: str) -> bool:
    """Whether ``target`` may hold a store already (a missing file does not; a database URL
    always may)."""
    return not backend_for(target).local or Path(target).exists()


async def open_store(target: str, options: StoreOptions) -> SyncStore:
    """The sync store ``target`` names, open (lease taken unless ``options.read_only``)."""
    return await backend_for(target).open(target, options)


def _is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def _is_sqlite(target: str) -> bool:
    return not _is_postgres(target) and Path(target).suffix.lower() in SQLITE_SUFFIXES


_SQLITE: Final = "vccasync.stores._sqlite_changes:open_store"
_POSTGRES: Final = "vccasync.stores._postgres_changes:open_store"

register(Backend("sqlite", _is_sqlite, _SQLITE, True, "an SQLite file (.sqlite, .sqlite3, .db)"))
register(Backend("postgresql", _is_postgres, _POSTGRES, False, "a postgresql:// URL"))
