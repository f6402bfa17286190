"""Sync: passes over ``[last complete end - lookback, now]`` that tell new, changed and removed
interactions apart (pure planning and diffing, the async engine, an in-memory state).
``SyncMetrics`` and ``serve_metrics`` (the ``metrics`` extra) import prometheus-client only
when first used."""

from typing import TYPE_CHECKING, Any

from ._diff import Change, ChangeKind, Known, Span
from ._durations import parse_duration
from ._engine import (
    DEFAULT_EVERY,
    DEFAULT_LOOKBACK,
    ChangeFeed,
    Duration,
    PassObserver,
    PassProgress,
    PassResult,
    SyncEngine,
)
from ._state import MemoryState, Observed, SyncState

if TYPE_CHECKING:
    from ._metrics import SyncMetrics, serve_metrics

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_LOOKBACK",
    "Change",
    "ChangeFeed",
    "ChangeKind",
    "Duration",
    "Known",
    "MemoryState",
    "Observed",
    "PassObserver",
    "PassProgress",
    "PassResult",
    "Span",
    "SyncEngine",
    "SyncMetrics",
    "SyncState",
    "parse_duration",
    "serve_metrics",
]


def __getattr__(name: str) -> Any:
    if name in ("SyncMetrics", "serve_metrics"):  # prometheus-client, only when asked for
        from . import _metrics

        return getattr(_metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
