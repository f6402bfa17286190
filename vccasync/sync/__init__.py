"""Sync: passes over ``[last complete end - lookback, now]`` that tell new, changed and removed
interactions apart (pure planning and diffing, the async engine, an in-memory state)."""

from .diff import Change, ChangeKind, Known, Span, classify, plan_span, removed
from .durations import parse_duration
from .engine import (
    DEFAULT_EVERY,
    DEFAULT_LOOKBACK,
    ChangeFeed,
    Duration,
    PassObserver,
    PassProgress,
    PassResult,
    SyncEngine,
)
from .fingerprint import changed_pieces, digest, fingerprint, piece_fingerprint, snapshot
from .state import MemoryState, Observed, SyncState

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
    "SyncState",
    "changed_pieces",
    "classify",
    "digest",
    "fingerprint",
    "parse_duration",
    "piece_fingerprint",
    "plan_span",
    "removed",
    "snapshot",
]
