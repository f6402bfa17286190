"""Instants as the fake stores and writes them: epoch milliseconds and the API's ISO text."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["DAY_MS", "EPOCH", "iso", "to_ms", "to_us"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS: Final = 86_400_000


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, rounded down."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def to_us(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime."""
    return (moment - EPOCH) // timedelta(microseconds=1)


@functools.lru_cache(maxsize=4096)
def _date(day: int) -> str:
    return (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def iso(ms: int, *, always_millis: bool = False) -> str:
    """ISO 8601 UTC text as the API writes it: ``...T10:00:00Z`` or ``...T10:00:00.250Z``."""
    sec, milli = divmod(ms, 1000)
    day, rem = divmod(sec, 86_400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    base = f"{_date(day)}T{hour:02d}:{minute:02d}:{second:02d}"
    return f"{base}.{milli:03d}Z" if milli or always_millis else f"{base}Z"
