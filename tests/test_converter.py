"""Converter: the vendor's example pages round-trip; addresses are strings; unknowns pass."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync import ContentType, Direction, ResponseValidationError, to_api
from vccasync.converter import (
    decode_page,
    format_instant,
    structure_interaction,
    structure_page,
)

SAMPLES = Path(__file__).parent / "samples"


def _sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("vendor_next_page.json", "MjAyMS0wMS0yMFQxMDoxMDowMC4wMDBaXw=="),
        ("vendor_last_page.json", None),
    ],
)
def test_vendor_examples_round_trip(name: str, token: str | None) -> None:
    page = _sample(name)
    items, next_token = decode_page(json.dumps(page).encode())
    assert next_token == token
    [item] = items
    assert item.guid == "2480fc2c-bbd7-427c-9439-02f76583aef5"
    assert item.start == datetime(2020, 2, 16, 14, 11, 56, tzinfo=UTC)
    assert item.connect_from == "14154204204" and item.connect_to == "22222"
    assert item.direction is Direction.INBOUND
    assert [a.id for a in item.handling_agents] == ["1342"]
    recording, voicemail, ivr, chat = item.content
    assert recording.type is ContentType.CALL_RECORDING and recording.content_length == 359
    assert voicemail.owning_agent is not None and voicemail.owning_agent.id == "1342"
    assert ivr.owning_interaction_plan is not None
    assert ivr.owning_interaction_plan.id == "816f1144-ac27-4bba-a280-cc66"
    assert chat.properties.duration == timedelta(seconds=5) and chat.properties.version == 1
    assert chat.last_modified == datetime(2024, 2, 1, 13, 31, 31, tzinfo=UTC)

    expected = copy.deepcopy(page["items"][0])
    expected["connectFrom"], expected["connectTo"] = "14154204204", "22222"
    assert to_api(item) == expected  # camelCase, addresses as strings, every field kept


def test_numbers_never_lose_digits_and_strings_keep_leading_zeros() -> None:
    base = _sample("vendor_last_page.json")["items"][0]
    huge = (
        b'{"items":[{"guid":"g","start":"2025-01-01T00:00:00Z",'
        b'"connectFrom":123456789012345678901234567890,"connectTo":"01473555000",'
        b'"handlingAgents":[],"content":[]}],"meta":{"nextContinuationToken":null}}'
    )
    [item], _ = decode_page(huge)
    assert item.connect_from == "123456789012345678901234567890"
    assert item.connect_to == "01473555000"
    assert structure_interaction({**base, "connectFrom": 4.4e10}).connect_from == "44000000000"
    email = structure_interaction({**base, "connectFrom": "jo@example.com", "connectTo": None})
    assert email.connect_from == "jo@example.com" and email.connect_to is None


def test_unknown_types_and_fields_pass_through() -> None:
    item = _sample("vendor_last_page.json")["items"][0]
    item = {**item, "channel": "voice", "direction": "sideways"}
    item["content"] = [
        {**item["content"][3], "type": "holographicRecording", "sentimentScore": 0.7},
        {
            **item["content"][0],
            "properties": {"duration": {"value": 1500}, "codec": {"name": "opus"}},
        },
    ]
    parsed = structure_interaction(item)
    assert parsed.extra == {"channel": "voice"} and parsed.direction == "sideways"
    holo, recording = parsed.content
    assert holo.type == "holographicRecording" and holo.extra == {"sentimentScore": 0.7}
    assert recording.properties.duration == timedelta(milliseconds=1500)
    assert recording.properties.extra == {"codec": {"name": "opus"}}
    assert to_api(parsed) == {**item, "connectFrom": "14154204204", "connectTo": "22222"}


def test_milliseconds_and_offsets() -> None:
    item = _sample("vendor_last_page.json")["items"][0]
    parsed = structure_interaction({**item, "start": "2025-01-03T10:00:00.250+01:00"})
    assert parsed.start == datetime(2025, 1, 3, 9, 0, 0, 250000, tzinfo=UTC)
    assert to_api(parsed)["start"] == "2025-01-03T09:00:00.250Z"
    assert format_instant(datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)).endswith(".123456Z")


@pytest.mark.parametrize(
    "page",
    [
        {"items": [{"guid": "g"}], "meta": {"nextContinuationToken": None}},  # no start
        {"items": [{"guid": "g", "start": "yesterday"}]},
        {"items": "nope"},
        {"meta": {}},
        {"items": [], "meta": {"nextContinuationToken": 5}},
        [],
    ],
)
def test_malformed_pages_raise_validation_error(page: Any) -> None:
    with pytest.raises(ResponseValidationError):
        structure_page(page)
