"""Fingerprints: what a pass compares to tell a changed interaction from an unchanged one.

Pure, no I/O. The fingerprint of an interaction is a 16-byte BLAKE2b digest of its whole API
JSON (:func:`vccasync.to_api`) written canonically: keys sorted, content pieces taken in
``contentKey`` order. So a piece added or gone, a piece's ``lastModified``, ``contentLength``,
``properties`` or any other field, and any change to the interaction's own fields (addresses,
direction, agents, unknown fields) make it "changed"; the order the API lists pieces in does
not. A piece has its own fingerprint (:func:`piece_fingerprint`) so that only new or changed
pieces need downloading (:func:`changed_pieces`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .._converter import converter, to_api
from .._models import Content, Interaction

__all__ = [
    "changed_pieces",
    "digest",
    "fingerprint",
    "piece_fingerprint",
    "snapshot",
]

DIGEST_SIZE = 16


def snapshot(interaction: Interaction) -> tuple[bytes, bytes]:
    """The interaction's API JSON (pieces in the API's order: what a store or a "removed"
    change gives back) and its fingerprint (keys sorted, pieces in ``contentKey`` order)."""
    data = to_api(interaction)
    hasher = hashlib.blake2b(
        _dump({k: v for k, v in data.items() if k != "content"}), digest_size=DIGEST_SIZE
    )
    for piece in sorted(data.get("content", []), key=lambda piece: piece["contentKey"]):
        hasher.update(b"\x1e" + _dump(piece))
    return _dump(data), hasher.digest()


def fingerprint(interaction: Interaction) -> bytes:
    """16-byte digest of the interaction's API JSON, pieces in ``contentKey`` order."""
    return snapshot(interaction)[1]


def piece_fingerprint(piece: Content) -> bytes:
    """16-byte digest of one piece's API JSON (key, type, ``lastModified``, length, ...)."""
    return digest(_dump(converter.unstructure(piece, Content)))


def changed_pieces(current: Interaction, previous: Interaction | None) -> tuple[Content, ...]:
    """The pieces of ``current`` that ``previous`` lacks or holds in another state."""
    if previous is None:
        return current.content
    before = {p.content_key: piece_fingerprint(p) for p in previous.content}
    return tuple(p for p in current.content if before.get(p.content_key) != piece_fingerprint(p))


def _dump(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(data: bytes) -> bytes:
    """16-byte BLAKE2b digest of ``data``."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()
