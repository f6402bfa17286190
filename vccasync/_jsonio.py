"""JSON bytes <-> Python values, every digit of every number kept. No I/O.

orjson (the ``fast`` extra) is used when installed, the standard library otherwise. orjson reads
an integer outside 64 bits as a float, losing digits, so a body that may hold one (a run of 20
digits, or a minus sign and 19) is decoded by the standard library, which keeps every digit; and
orjson refuses to write such an integer, so ``dumps`` falls back the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:  # orjson is an optional speed-up; the standard library is the fallback
    import orjson
except ImportError:  # pragma: no cover - exercised only without the extra
    orjson = None  # type: ignore[assignment]

__all__ = ["WIDE_FLOAT", "dumps", "loads", "loads_unscanned", "stdlib_only"]

_fast = orjson is not None
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_WIDE = b"0" * 20  # at least 10**19: may not fit in 64 bits
_WIDE_NEGATIVE = b"-" + b"0" * 19  # at most -10**18 * 10: may be below -2**63
_RUN = b"0" * 19  # in both of the above: one search of a page without such a run decides
WIDE_FLOAT = 2.0**63  # orjson reads an integer outside 64 bits as a float at least this large


def _may_overflow(body: bytes | str) -> bool:
    """Whether ``body`` may hold an integer that orjson reads as a float (false alarms are safe)."""
    raw = body.encode() if isinstance(body, str) else body
    digits = raw.translate(_DIGITS)
    return _RUN in digits and (_WIDE in digits or _WIDE_NEGATIVE in digits)


def loads(body: bytes | str) -> Any:
    """Decode JSON; integers keep every digit; invalid JSON raises ``ValueError``."""
    if _fast and not _may_overflow(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the standard library gives its own error (or reads what orjson refuses)
    return json.loads(body)


def loads_unscanned(body: bytes | str) -> Any | None:
    """orjson's reading of ``body`` without the scan for wide integers (a third of orjson's
    own time on a search page), or None when orjson is off or refuses the body.

    An integer outside 64 bits comes back as a float of magnitude ``WIDE_FLOAT`` or more: a
    caller that keeps no such float has every integer exact, as ``loads`` would give it; one
    that does must read the body again with ``loads``.
    """
    if not _fast:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; integers of any size are written with every digit."""
    if _fast:
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits, or a type the standard library may still know
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@contextmanager
def stdlib_only() -> Iterator[None]:
    """Within the block, decode and encode with the standard library only (tests, benchmarks)."""
    global _fast
    saved, _fast = _fast, False
    try:
        yield
    finally:
        _fast = saved
