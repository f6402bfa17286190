"""The compact row layout of a fake dataset: flags, packed agents, guids, fixed addresses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = [
    "AGENT_IDS",
    "CHANNELS",
    "CHAT",
    "CHAT_LINE",
    "EMAIL",
    "EMAIL_LINE",
    "FLAG_CONTENT",
    "FLAG_OUTBOUND",
    "N_VARIANTS",
    "VARIANT_SHIFT",
    "VOICE",
    "VOICE_LINES",
    "format_guid",
    "pack_agents",
    "unpack_agents",
]

FLAG_OUTBOUND: Final = 1
FLAG_CONTENT: Final = 2
VARIANT_SHIFT: Final = 2
N_VARIANTS: Final = 4
_AGENT_BITS: Final = 10
_AGENT_MASK: Final = (1 << _AGENT_BITS) - 1

AGENT_IDS: Final[tuple[str, ...]] = ("1342", "67833", *(str(2000 + i) for i in range(198)))
VOICE_LINES: Final[tuple[int | str, ...]] = (22222, 441473555000, "08005550100")
EMAIL_LINE: Final = "support@example.com"
CHAT_LINE: Final = "webchat-widget-1"
VOICE, EMAIL, CHAT = 0, 1, 2
CHANNELS: Final = ("voice", "email", "chat")


def format_guid(raw: bytes) -> str:
    """Canonical lowercase text of a 16-byte guid (order-preserving)."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def unpack_agents(packed: int) -> tuple[int, ...]:
    """Agent tags (index + 1) of a packed agents cell."""
    return tuple(t for t in (packed & _AGENT_MASK, (packed >> 10) & _AGENT_MASK, packed >> 20) if t)


def pack_agents(indexes: Sequence[int]) -> int:
    """Up to three agent indexes in one int (10 bits each, 0: none)."""
    packed = 0
    for n, idx in enumerate(indexes[:3]):
        packed |= (idx + 1) << (_AGENT_BITS * n)
    return packed
