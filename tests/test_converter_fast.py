"""The page's fast path gives what the reference hooks give: the same values, the same errors,
the same wide integers; and what it shares stays bounded."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vccasync import ResponseValidationError, _page, to_api
from vccasync import _converter as conv
from vccasync._converter import _structure_interaction
from vccasync._jsonio import WIDE_FLOAT, loads_unscanned, stdlib_only
from vccasync._models import AgentRef, ContentProperties
from vccasync._page import _holds_wide, _structure_items, decode_page, structure_page
from vccasync.fake import DatasetSpec, generate

WIDE = 123456789012345678901234567  # beyond 64 bits: orjson alone reads a float
WIDE_NEGATIVE = -9223372036854775809  # one below the smallest 64-bit integer


def _common() -> dict[str, Any]:
    """An item of the common shape (the fast path's), every field present."""
    return {
        "guid": "2480fc2c-bbd7-427c-9439-02f76583aef5",
        "start": "2025-01-03T10:00:00Z",
        "connectFrom": 14154204204,
        "connectTo": "01473555000",
        "direction": "inbound",
        "handlingAgents": [{"id": "1342"}],
        "content": [
            {
                "contentKey": "k1",
                "type": "callRecording",
                "contentType": "audio/wav",
                "contentLength": 359,
                "lastModified": "2025-01-03T10:05:00Z",
                "properties": {"duration": {"value": 5000}},
            },
            {
                "contentKey": "k2",
                "type": "chatTranscript",
                "contentType": "application/json",
                "contentLength": 12,
                "owningAgent": {"id": "7"},
                "owningInteractionPlan": {"id": "plan-1"},
                "lastModified": "2025-01-03T10:06:00.250Z",
                "properties": {"version": {"value": 1}, "duration": {"value": 407068}},
            },
            {
                "contentKey": "k3",
                "type": "transcript",
                "contentType": "text/plain",
                "contentLength": 0,
                "lastModified": "2025-01-03T10:07:00Z",
                "properties": {"version": {"value": 2}},
            },
        ],
    }


# values of every JSON type, and a few the reference converts or refuses
ODD = st.sampled_from(
    [
        *(None, True, 0, -1, 3, 1.0, 1.5, 4.4e10, float(WIDE), -(10**20), 10**30),
        *("", "3", "x", "2025-01-03T10:00:00+01:00", [], [1], {}, {"id": "1"}, {"id": 5}),
        *({"value": 3}, {"value": 1.5}, {"value": "4"}, {"value": True}, {"value": 1, "u": 2}),
        {"id": "1", "team": "blue"},
    ]
)


def _places(item: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) of every place of ``item`` the fast path reads."""
    places: list[tuple[Any, Any]] = [(item, key) for key in item]
    places += [(item["handlingAgents"][0], "id")]
    for piece in item["content"]:
        places += [(piece, key) for key in piece]
        places += [(piece["properties"], key) for key in piece["properties"]]
        for key in ("duration", "version"):
            if key in piece["properties"]:
                places.append((piece["properties"][key], "value"))
    return places


@st.composite
def items(draw: st.DrawFn) -> Any:
    """The common item with some places changed (a value replaced, a key dropped or added)."""
    item = _common()
    places = _places(item)
    for _ in range(draw(st.integers(0, 3))):
        where, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "drop", "extra"]))
        if key not in where:
            continue
        if action == "replace":
            where[key] = draw(ODD)
        elif action == "drop":
            del where[key]
        else:
            where[draw(st.sampled_from(["zeta", "id", "value", "type"]))] = draw(ODD)
    return draw(st.sampled_from([item, [item], "nope", None, _common()["content"][0]]))


def _reference(item: Any) -> Any:
    """What the reference gives for ``item``: the interaction, or the error's class and text."""
    try:
        return _structure_interaction(item)
    except Exception as exc:
        return (type(exc), str(exc))


def _fast(item: Any) -> Any:
    try:
        [interaction], _ = _structure_items([item])
    except Exception as exc:
        return (type(exc), str(exc))
    return interaction


def _same(fast: Any, reference: Any) -> None:
    """Equal, and of the same types field by field (an enum member is not its string)."""
    assert fast == reference and repr(fast) == repr(reference)
    if isinstance(reference, tuple):
        return
    assert type(fast.direction) is type(reference.direction)
    assert [type(c.type) for c in fast.content] == [type(c.type) for c in reference.content]
    assert (fast.extra is conv._NO_EXTRA) is (reference.extra is conv._NO_EXTRA)
    assert to_api(fast) == to_api(reference)


@settings(max_examples=400, deadline=None)
@given(item=items())
@example(item=_common())
def test_fast_path_gives_the_reference_value_or_error(item: Any) -> None:
    _same(_fast(item), _reference(item))


@pytest.mark.parametrize("millis", [0, 1, 999, 1000, 407068, 4095999, 4096000, 10**12, -1, -1001])
def test_durations_from_the_tables_equal_the_product(millis: int) -> None:
    item = _common()
    item["content"][0]["properties"] = {"duration": {"value": millis}}
    for _ in range(2):  # the second time from the table of seconds, if it holds this one
        [fast], _ = _structure_items([item])
        assert fast.content[0].properties.duration == timedelta(milliseconds=millis)
        _same(fast, _structure_interaction(item))


def test_a_page_is_named_by_its_first_malformed_item() -> None:
    bad = {**_common(), "start": "yesterday"}
    page = {"items": [_common(), bad, {"guid": "g"}]}
    with pytest.raises(ResponseValidationError, match="malformed interaction '2480fc2c") as caught:
        structure_page(page)
    assert "Invalid isoformat string: 'yesterday'" in str(caught.value)


def _wide_page(where: str) -> bytes:
    item = _common()
    if where == "interaction extra":
        item["customFields"] = {"ticket": [WIDE, WIDE_NEGATIVE]}
    elif where == "content extra":
        item["content"][1]["sizes"] = [1, WIDE]
    elif where == "address":
        item["connectFrom"] = WIDE
    elif where == "properties extra":
        item["content"][0]["properties"]["frames"] = {"value": WIDE}
    elif where == "agent extra":
        item["handlingAgents"][0]["badge"] = WIDE_NEGATIVE
    return json.dumps({"items": [_common(), item], "meta": {}}).encode()


@pytest.mark.parametrize(
    "where", ["interaction extra", "content extra", "address", "properties extra", "agent extra"]
)
def test_wide_integers_keep_every_digit_wherever_kept(where: str) -> None:
    """orjson reads them as floats, unscanned; the page is then read again exactly."""
    body = _wide_page(where)
    assert loads_unscanned(body) != json.loads(body)  # the float that orjson makes of it
    with stdlib_only():
        expected = decode_page(body)
    assert decode_page(body) == expected == structure_page(json.loads(body))
    assert to_api(decode_page(body)[0][1]) == to_api(expected[0][1])


def test_wide_integers_outside_the_items_read_nothing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = json.dumps({"items": [_common()], "meta": {"total": WIDE}}).encode()
    monkeypatch.setattr(_page, "loads", None)  # the exact reading is not needed
    [item], token = decode_page(body)
    assert token is None and item == _structure_interaction(_common())


@pytest.mark.parametrize(
    ("value", "wide"),
    [
        (float(2**63), True),
        (-float(2**63), True),
        (9.2e18, False),
        (0.88, False),
        (2**70, False),  # an exact integer is no float
        ({"a": [1, {"b": [1e300]}]}, True),
        ({"a": [1, {"b": ["1e300"]}]}, False),
    ],
)
def test_holds_wide(value: Any, wide: bool) -> None:
    assert _holds_wide(value) is wide
    assert WIDE_FLOAT == 2.0**63


def test_shared_objects_are_equal_to_new_ones_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conv, "_SHARED_REFS", 8)
    monkeypatch.setattr(conv._AGENTS, "shared", {})
    monkeypatch.setattr(_page, "_VERSIONS", {})
    monkeypatch.setattr(_page, "_SHARED_VERSIONS", 4)
    for n in range(40):  # a different agent and version on each page
        item = copy.deepcopy(_common())
        item["handlingAgents"] = [{"id": f"agent-{n}"}] * 2
        item["content"][2]["properties"] = {"version": {"value": n}}
        got, again = _structure_items([item, item])[0]
        first, second = got.handling_agents
        assert first is second is again.handling_agents[0] and first == AgentRef(f"agent-{n}")
        shared = again.content[2].properties is got.content[2].properties
        assert shared is (n < 4)  # the first four versions only: the table is full
        assert got.content[2].properties == ContentProperties(version=n)
        assert len(conv._AGENTS.shared) <= 8 and len(_page._VERSIONS) <= 4
    assert len(_page._SECONDS) <= _page._CACHED_SECONDS


def test_a_decoded_page_equals_the_reference_on_the_fake_data() -> None:
    data = generate(DatasetSpec(seed=3, days=1, per_day=400))
    body = json.dumps({"items": [data.item(p) for p in range(400)], "meta": {}}).encode()
    items_, _ = decode_page(body)
    reference = [_structure_interaction(item) for item in json.loads(body)["items"]]
    assert items_ == reference
    for fast, ref in zip(items_, reference, strict=True):
        _same(fast, ref)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(item=items())
def test_decode_page_equals_the_reference_with_either_decoder(item: Any, decoder: str) -> None:
    body = json.dumps({"items": [_common(), item], "meta": {}}).encode()
    expected = _reference(item)
    try:
        [_, got], _ = decode_page(body)
    except ResponseValidationError as exc:
        assert isinstance(expected, tuple) and str(exc).endswith(
            f"{expected[0].__name__}: {expected[1]}"
        )
    else:
        _same(got, expected)
