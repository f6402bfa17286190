"""Deterministic content bytes of the fake API and HTTP ``Range`` parsing (pure, no I/O).

The bytes of a piece of content depend only on ``(guid, content_key)`` and the offset: they are
made in blocks of 64 KiB, each from its own seeded generator, so any range can be produced
without producing what comes before it, and a resume that continues at a wrong offset shows.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Iterator
from typing import Final

__all__ = [
    "BLOCK_SIZE",
    "content_bytes",
    "content_chunks",
    "content_sha256",
    "parse_range",
]

BLOCK_SIZE: Final = 1 << 16
_RANGE: Final = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@functools.lru_cache(maxsize=64)
def _block(guid: str, key: str, index: int) -> bytes:
    seed = hashlib.blake2b(f"{guid}\0{key}\0{index}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(seed, "big")).randbytes(BLOCK_SIZE)


def content_chunks(guid: str, key: str, start: int, stop: int) -> Iterator[bytes]:
    """Bytes ``start`` (included) to ``stop`` (excluded) of the content, in chunks <= 64 KiB."""
    pos = max(0, start)
    while pos < stop:
        index, offset = divmod(pos, BLOCK_SIZE)
        chunk = _block(guid, key, index)[offset : offset + stop - pos]
        yield chunk
        pos += len(chunk)


def content_bytes(guid: str, key: str, length: int) -> bytes:
    """The whole content (``length`` bytes) in memory: for tests of small content."""
    return b"".join(content_chunks(guid, key, 0, length))


def content_sha256(guid: str, key: str, length: int) -> str:
    """Hex SHA-256 of the content, computed chunk by chunk (constant memory)."""
    digest = hashlib.sha256()
    for chunk in content_chunks(guid, key, 0, length):
        digest.update(chunk)
    return digest.hexdigest()


def parse_range(header: str | None, length: int) -> tuple[int, int] | None:
    """The ``(start, stop)`` a ``Range`` header asks of ``length`` bytes.

    None means "serve everything" (no header, or one this server ignores, as RFC 9110
    allows: a malformed one or several ranges). Raises ``ValueError`` when the range cannot
    be satisfied (416).
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        count = int(last)
        if count == 0:
            raise ValueError("empty suffix range")
        return max(0, length - count), length
    start = int(first)
    stop = length if not last else min(length, int(last) + 1)
    if last and int(last) < start:
        return None
    if start >= length:
        raise ValueError(f"range starts at {start}, the content has {length} bytes")
    return start, stop
