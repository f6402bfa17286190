"""Deterministic content bytes of the fake API and HTTP ``Range`` parsing (pure, no I/O).

The bytes of a piece of content depend only on ``(guid, content_key)``, its ``version`` tag
(empty for the piece as generated; a piece reprocessed upstream has other bytes) and the offset:
they are made in blocks of 64 KiB, each from its own seeded generator, so any range can be
produced without producing what comes before it, and a resume that continues at a wrong offset
or onto another version shows. :func:`validators` gives a version's ``ETag``/``Last-Modified``
and :func:`if_range_matches` judges an ``If-Range`` header against them.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Iterator
from datetime import datetime
from email.utils import format_datetime
from typing import Final

__all__ = [
    "BLOCK_SIZE",
    "content_bytes",
    "content_chunks",
    "content_sha256",
    "if_range_matches",
    "parse_range",
    "revision_tag",
    "validators",
]

BLOCK_SIZE: Final = 1 << 16
_RANGE: Final = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@functools.lru_cache(maxsize=64)
def _block(guid: str, key: str, index: int, version: str) -> bytes:
    text = f"{guid}\0{key}\0{index}" + (f"\0{version}" if version else "")
    seed = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(seed, "big")).randbytes(BLOCK_SIZE)


def content_chunks(
    guid: str, key: str, start: int, stop: int, version: str = ""
) -> Iterator[bytes]:
    """Bytes ``start`` (included) to ``stop`` (excluded) of the content, in chunks <= 64 KiB."""
    pos = max(0, start)
    while pos < stop:
        index, offset = divmod(pos, BLOCK_SIZE)
        chunk = _block(guid, key, index, version)[offset : offset + stop - pos]
        yield chunk
        pos += len(chunk)


def content_bytes(guid: str, key: str, length: int, version: str = "") -> bytes:
    """The whole content (``length`` bytes) in memory: for tests of small content."""
    return b"".join(content_chunks(guid, key, 0, length, version))


def content_sha256(guid: str, key: str, length: int, version: str = "") -> str:
    """Hex SHA-256 of the content, computed chunk by chunk (constant memory)."""
    digest = hashlib.sha256()
    for chunk in content_chunks(guid, key, 0, length, version):
        digest.update(chunk)
    return digest.hexdigest()


def revision_tag(count: int) -> str:
    """The ``version`` of a piece's bytes after ``count`` reprocessings upstream."""
    return f"r{count}" if count else ""


def validators(
    guid: str, key: str, last_modified: datetime, length: int, version: str = ""
) -> tuple[str, str]:
    """The strong ``ETag`` and the ``Last-Modified`` date of one version of a piece."""
    text = f"{guid}\0{key}\0{last_modified.isoformat()}\0{length}\0{version}"
    tag = hashlib.blake2b(text.encode(), digest_size=10).hexdigest()
    return f'"{tag}"', format_datetime(last_modified.replace(microsecond=0), usegmt=True)


def if_range_matches(header: str, etag: str, last_modified: str) -> bool:
    """Whether an ``If-Range`` header names this version (RFC 9110 13.1.5): an entity tag
    compared strongly (a weak one never matches), else a date equal to ``Last-Modified``."""
    value = header.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    return value == last_modified


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
