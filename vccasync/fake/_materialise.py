"""An interaction's JSON, built on demand from a generator seeded by its guid (no I/O).

It reads a dataset's columns through :class:`Rows` (which ``Dataset`` provides), so this module
does not import the dataset that calls it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Protocol

import attrs

from vccasync.fake._columns import (
    AGENT_IDS,
    CHANNELS,
    CHAT,
    EMAIL,
    FLAG_CONTENT,
    FLAG_OUTBOUND,
    VARIANT_SHIFT,
    VOICE,
    format_guid,
    unpack_agents,
)
from vccasync.fake._instants import iso, to_ms
from vccasync.fake._spec import DatasetSpec

__all__ = ["Item", "Revision", "Rows", "materialise"]

Item = dict[str, Any]
_QUIRKY_KEYS: Final = ("..", "rec(1).part,2", "a*b'c!d", "-_.,*'()")


@attrs.frozen
class Revision:
    """How often a piece was reprocessed upstream, and its length since (None: unchanged)."""

    count: int = 0
    length: int | None = None


class Rows(Protocol):
    """The columns of a dataset that an interaction is built from, one entry per position."""

    @property
    def spec(self) -> DatasetSpec: ...
    @property
    def addresses(self) -> Sequence[int | str]: ...
    @property
    def ms(self) -> Sequence[int]: ...
    @property
    def flags(self) -> Sequence[int]: ...
    @property
    def from_idx(self) -> Sequence[int]: ...
    @property
    def to_idx(self) -> Sequence[int]: ...
    @property
    def agents(self) -> Sequence[int]: ...
    @property
    def removed_keys(self) -> dict[int, frozenset[str]]: ...
    @property
    def revisions(self) -> dict[tuple[int, str], Revision]: ...

    def raw_guid(self, pos: int) -> bytes: ...


def materialise(data: Rows, pos: int) -> Item:
    """The interaction at ``pos`` of ``data`` in the API's JSON shape (a fresh dict)."""
    raw = data.raw_guid(pos)
    rng = random.Random(int.from_bytes(raw, "big") ^ data.spec.seed)
    flags, ms = data.flags[pos], data.ms[pos]
    frm, to = data.addresses[data.from_idx[pos]], data.addresses[data.to_idx[pos]]
    customer = to if flags & FLAG_OUTBOUND else frm
    agents = [AGENT_IDS[t - 1] for t in unpack_agents(data.agents[pos])]
    item: Item = {
        "guid": format_guid(raw),
        "start": iso(ms),
        "connectFrom": frm,
        "connectTo": to,
        "direction": "outbound" if flags & FLAG_OUTBOUND else "inbound",
        "handlingAgents": [{"id": a} for a in agents],
        "content": [],
    }
    variant = flags >> VARIANT_SHIFT
    channel = _channel(customer)
    quirky = data.spec.quirk_rate
    if variant == 2 or rng.random() < 6 * quirky:
        item["channel"] = CHANNELS[channel]
    if variant == 2 or rng.random() < quirky:
        item["sentimentScore"] = 0.7 if variant else round(rng.random(), 2)
    if variant == 2 or rng.random() < quirky / 5:
        item["customFields"] = {"queue": rng.choice(("Sales", "Support")), "priority": 2}
    if flags & FLAG_CONTENT:
        if variant:
            item["content"] = _variant_content(variant, rng, ms, agents)
            if variant == 1:
                item["content"] += _extra_content(data.spec.extra_keys, ms)
        else:
            item["content"] = _random_content(channel, rng, ms, agents, quirky)
        _scale_lengths(item["content"], data.spec.content_scale)
        if gone := data.removed_keys.get(pos):
            item["content"] = [c for c in item["content"] if c["contentKey"] not in gone]
        if data.revisions:
            _revise(data, pos, item["content"])
    return item


def _channel(address: int | str) -> int:
    if isinstance(address, int) or address[:1] in "0+":
        return VOICE
    return EMAIL if "@" in address[1:] else CHAT


def _content(
    rng: random.Random,
    ms: int,
    kind: str,
    media: str,
    *,
    key: str | None = None,
    duration: bool = False,
    version: bool = False,
) -> Item:
    seconds = 5 + int(rng.random() * 900)
    properties: Item = {}
    if version:
        properties["version"] = {"value": 1 + int(rng.random() * 2)}
    if duration:
        properties["duration"] = {"value": seconds * 1000 + int(rng.random() * 1000)}
    modified = ms + (seconds + 30 + int(rng.random() * 86_400)) * 1000
    if rng.random() < 0.8:
        modified -= modified % 1000
    if key is None:
        key = format_guid(rng.getrandbits(128).to_bytes(16, "big"))
        if rng.random() < 0.005:
            key = rng.choice(_QUIRKY_KEYS)
    return {
        "contentKey": key,
        "type": kind,
        "contentType": media,
        "contentLength": seconds * (16_000 if media.startswith(("audio", "video")) else 40),
        "lastModified": iso(modified),
        "properties": properties,
    }


def _random_content(
    channel: int, rng: random.Random, ms: int, agents: list[str], quirky: float
) -> list[Item]:
    def maybe(p: float) -> bool:
        return rng.random() < p

    out: list[Item] = []
    if channel == VOICE:
        if maybe(0.95):
            out.append(
                _content(rng, ms, "callRecording", "audio/wav", key="callRecording", duration=True)
            )
        if maybe(0.08):
            vm = _content(rng, ms, "voicemail", "audio/wav", duration=True)
            vm["owningAgent"] = {"id": agents[0] if agents else rng.choice(AGENT_IDS)}
            out.append(vm)
        if maybe(0.1):
            ivr = _content(rng, ms, "ivrAudioRecording", "audio/wav", duration=True)
            ivr["owningInteractionPlan"] = {"id": format_guid(rng.randbytes(16))[:28]}
            out.append(ivr)
        if maybe(0.2):
            out.append(_content(rng, ms, "transcript", "application/json", version=True))
        if maybe(0.1):
            summary = _content(rng, ms, "sentimentSummary", "application/json", version=True)
            summary["sentimentScore"] = round(rng.random(), 2)
            out.append(summary)
        if maybe(0.05):
            out.append(_content(rng, ms, "screenRecording", "video/mp4", duration=True))
        if maybe(0.02):
            out.append(_content(rng, ms, "videoRecording", "video/mp4", duration=True))
        if maybe(0.05):
            out.append(_content(rng, ms, "categorizationResult", "application/json", version=True))
    elif channel == CHAT:
        out.append(
            _content(rng, ms, "chatTranscript", "application/json", duration=True, version=True)
        )
    else:
        out.append(_content(rng, ms, "interactionLog", "application/json"))
    if channel != VOICE and maybe(0.3):
        media = rng.choice(("application/pdf", "image/png", "text/plain; charset=utf-8"))
        out.append(_content(rng, ms, "attachment", media))
    if maybe(0.1):
        out.append(_content(rng, ms, "conversationSummary", "application/json", version=True))
    if maybe(quirky / 5):
        holo = _content(rng, ms, "holographicRecording", "application/x-hologram", duration=True)
        holo["properties"]["resolution"] = {"value": "8k"}
        out.append(holo)
    if not out:
        out.append(_content(rng, ms, "interactionLog", "application/json"))
    if maybe(quirky):
        rng.choice(out)["language"] = "en-GB"
    return out


def _extra_content(keys: Sequence[str], ms: int) -> list[Item]:
    return [
        {
            "contentKey": key,
            "type": "attachment",
            "contentType": "application/octet-stream",
            "contentLength": 1000 + 37 * n,
            "lastModified": iso(ms + 60_000),
            "properties": {},
        }
        for n, key in enumerate(keys)
    ]


def _scale_lengths(content: list[Item], scale: float) -> None:
    if scale != 1.0:
        for piece in content:
            piece["contentLength"] = max(1, int(piece["contentLength"] * scale))


def _variant_content(variant: int, rng: random.Random, ms: int, agents: list[str]) -> list[Item]:
    """Showcase content: every documented quirk is present in any dataset with an edge."""
    if variant == 1:  # the vendor's own example
        vm = _content(rng, ms, "voicemail", "audio/wav")
        vm["owningAgent"] = {"id": agents[0]}
        ivr = _content(rng, ms, "ivrAudioRecording", "audio/wav")
        ivr["owningInteractionPlan"] = {"id": "816f1144-ac27-4bba-a280-cc66"}
        chat = _content(rng, ms, "chatTranscript", "application/json", version=True, duration=True)
        return [_content(rng, ms, "callRecording", "audio/wav", key="callRecording"), vm, ivr, chat]
    if variant == 2:  # unknown type, unknown fields, quirky content key
        call = _content(rng, ms, "callRecording", "audio/wav", key="callRecording", duration=True)
        call["sentimentScore"] = 0.7
        holo = _content(
            rng, ms, "holographicRecording", "application/x-hologram", key="..", duration=True
        )
        holo["properties"]["resolution"] = {"value": "8k"}
        return [call, holo]
    if variant == 3:
        return [
            _content(rng, ms, "interactionLog", "application/json"),
            _content(rng, ms, "attachment", "application/pdf"),
        ]
    return [_content(rng, ms, "chatTranscript", "application/json", version=True, duration=True)]


def _revise(data: Rows, pos: int, content: list[Item]) -> None:
    """Apply the revisions of the pieces at ``pos`` (see ``Dataset.revise``)."""
    for piece in content:
        revision = data.revisions.get((pos, piece["contentKey"]))
        if revision is None:
            continue
        modified = to_ms(datetime.fromisoformat(piece["lastModified"].replace("Z", "+00:00")))
        piece["lastModified"] = iso(modified + 1000 * revision.count)
        if revision.length is not None:
            piece["contentLength"] = revision.length
