"""Data model of the Interaction Content API: frozen, slotted attrs classes, no I/O.

Every class keeps the fields it does not know in ``extra`` (API names, API values), so that
new fields pass through and can be written back out unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from attrs import field, frozen

__all__ = [
    "AgentRef",
    "Content",
    "ContentProperties",
    "ContentType",
    "Direction",
    "Interaction",
    "InteractionPlanRef",
]

_NO_EXTRA: Mapping[str, Any] = {}


def _extra() -> Any:
    return field(default=_NO_EXTRA, repr=False, kw_only=True)


class Direction(StrEnum):
    """Who started the interaction."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ContentType(StrEnum):
    """The content types the vendor documents; ``Content.type`` also accepts any other string."""

    CALL_RECORDING = "callRecording"
    SCREEN_RECORDING = "screenRecording"
    VOICEMAIL = "voicemail"
    TRANSCRIPT = "transcript"
    CHAT_TRANSCRIPT = "chatTranscript"
    CATEGORIZATION_RESULT = "categorizationResult"
    SENTIMENT_SUMMARY = "sentimentSummary"
    ATTACHMENT = "attachment"
    IVR_AUDIO_RECORDING = "ivrAudioRecording"
    VIDEO_RECORDING = "videoRecording"
    CONVERSATION_SUMMARY = "conversationSummary"
    INTERACTION_LOG = "interactionLog"


@frozen
class AgentRef:
    """An agent, by its VCC id."""

    id: str
    extra: Mapping[str, Any] = _extra()


@frozen
class InteractionPlanRef:
    """The interaction plan that created a piece of content."""

    id: str
    extra: Mapping[str, Any] = _extra()


@frozen
class ContentProperties:
    """Type-dependent properties of a piece of content (``duration`` arrives in milliseconds)."""

    duration: timedelta | None = None
    version: int | None = None
    extra: Mapping[str, Any] = _extra()


EMPTY_PROPERTIES = ContentProperties()


@frozen
class Content:
    """One piece of content attached to an interaction (a recording, a transcript, ...)."""

    content_key: str
    type: ContentType | str
    content_type: str | None = None
    content_length: int | None = None
    last_modified: datetime | None = None
    owning_agent: AgentRef | None = None
    owning_interaction_plan: InteractionPlanRef | None = None
    properties: ContentProperties = EMPTY_PROPERTIES
    extra: Mapping[str, Any] = _extra()


@frozen
class Interaction:
    """One interaction with its content. Addresses are always strings (leading zeros kept)."""

    guid: str
    start: datetime
    connect_from: str | None = None
    connect_to: str | None = None
    direction: Direction | str | None = None
    handling_agents: tuple[AgentRef, ...] = ()
    content: tuple[Content, ...] = ()
    extra: Mapping[str, Any] = _extra()
