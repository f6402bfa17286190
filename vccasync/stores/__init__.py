"""Where interactions are kept: one asynchronous ``Sink`` protocol (``base``) implemented by
JSON lines (``jsonl``), SQLite (``sqlite``) and PostgreSQL (``postgres``); ``open_sink``
(``output``) picks one from an ``--output``; the resumable state is ``checkpoint`` (pure). A
sync keeps its state in the same SQLite or PostgreSQL stores (``sqlite_changes``,
``postgres_changes``); ``open_state`` picks one."""

from .base import Sink, write_search
from .output import open_sink, open_state

__all__ = ["Sink", "open_sink", "open_state", "write_search"]
