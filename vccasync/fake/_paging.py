"""Wire formats of a search: ISO 8601 instants and stateless continuation tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from vccasync.fake._dataset import SortKey
from vccasync.fake._instants import iso, to_ms

_GUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_INSTANT: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:?\d{2})"
)


def parse_instant(text: str) -> datetime | None:
    """An aware datetime from ISO 8601 with ``Z`` or an offset, or None when invalid/naive."""
    if not _INSTANT.fullmatch(text):
        return None
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # .NET writes 7 digits; Python takes 6
        text = text.replace(frac.group(0), frac.group(0)[:7])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def encode_token(key: SortKey) -> str:
    """Opaque token for "continue after ``key``": base64 of ``<start with millis>_<guid>``.

    Same look as the vendor's (``MjAyMS0wMi0xNVQwNzo1MzoxM1pfMQ==`` is ``2021-02-15T07:53:13Z_1``);
    standard base64, so it may hold ``+``, ``/`` and ``=`` that a client must URL-encode.
    """
    return base64.b64encode(f"{iso(key[0], always_millis=True)}_{key[1]}".encode()).decode()


def decode_token(token: str) -> SortKey | None:
    """The key a token continues after, or None when the token is not one of ours."""
    try:
        text = base64.b64decode(token.encode("ascii"), validate=True).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    instant, _, guid = text.rpartition("_")
    moment = parse_instant(instant)
    if moment is None or not _GUID.fullmatch(guid):
        return None
    return (to_ms(moment), guid)


def bind_token(token: str, params: Mapping[str, str]) -> str:
    """``token`` made valid only with the query ``params`` (its continuation token aside)."""
    return f"{token}.{_digest(params)}"


def unbind_token(token: str, params: Mapping[str, str]) -> str | None:
    """The token inside a bound one, or None when it was bound to another query."""
    inner, dot, digest = token.rpartition(".")
    return inner if dot and digest == _digest(params) else None


def _digest(params: Mapping[str, str]) -> str:
    query = sorted((k, v) for k, v in params.items() if k != "continuationtoken")
    return hashlib.sha256(repr(query).encode()).hexdigest()[:12]
