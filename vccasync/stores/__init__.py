"""Where interactions are kept: one asynchronous ``Sink`` protocol (``base``) implemented by
JSON lines (``jsonl``), SQLite (``sqlite``) and PostgreSQL (``postgres``); ``open_sink``
(``output``) picks one from an ``--output``; the resumable state is ``checkpoint`` (pure). A
sync keeps its state in the same SQLite or PostgreSQL stores (``sqlite_changes``,
``postgres_changes``), both implementing one contract (``contract.SyncStore``: rows,
checkpoint, removals, content queue, writer lease), chosen in one place (``registry``);
``open_state`` opens one for a sync without content."""

from ._base import Sink, write_search
from ._contract import StoreOptions, SyncStore
from ._output import open_sink, open_state

__all__ = ["Sink", "StoreOptions", "SyncStore", "open_sink", "open_state", "write_search"]
