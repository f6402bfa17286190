"""Where interactions are kept: one asynchronous ``Sink`` protocol (``base``) implemented by
JSON lines (``jsonl``), SQLite (``sqlite``) and PostgreSQL (``postgres``); ``open_sink``
(``output``) picks one from an ``--output``; the resumable state is ``checkpoint`` (pure)."""

from .base import Sink, write_search
from .output import open_sink

__all__ = ["Sink", "open_sink", "write_search"]
