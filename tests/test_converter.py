"""Converter: the vendor's example pages round-trip; addresses are strings and keep every digit;
unknowns pass. Every test runs with orjson and with the standard library's json."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vccasync import ContentType, Direction, ResponseValidationError, to_api
from vccasync import _page as page_module
from vccasync._converter import _constructor, converter, structure_interaction
from vccasync._instants import format_instant
from vccasync._jsonio import loads
from vccasync._models import AgentRef, Content, ContentProperties, Interaction, InteractionPlanRef
from vccasync._page import decode_page, structure_page

pytestmark = pytest.mark.usefixtures("decoder")

SAMPLES = Path(__file__).parent / "samples"
# a 25-digit number, then 16 to 19 digits (a float keeps only about 16 significant digits)
WIDE = [
    "1234567890123456789012345",
    "9007199254740993",
    "12345678901234567",
    "123456789012345678",
    "9999999999999999999",
    "1000000000000000001",
]


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


def _page(*items: str) -> bytes:
    return ('{"items":[' + ",".join(items) + '],"meta":{"nextContinuationToken":null}}').encode()


def _item(guid: str, connect_from: str, connect_to: str) -> str:
    return (
        f'{{"guid":"{guid}","start":"2025-01-01T00:00:00Z","connectFrom":{connect_from},'
        f'"connectTo":{connect_to},"handlingAgents":[],"content":[]}}'
    )


@pytest.mark.parametrize("number", WIDE)
def test_numbers_never_lose_digits_on_any_path(number: str) -> None:
    body = _item("g", number, number[::-1].lstrip("0"))
    [from_page, _], _ = decode_page(_page(body, _item("h", "1", "2")))
    one = structure_interaction(loads(body.encode()))  # the get-one path: loads, then structure
    for item in (from_page, one):
        assert item.connect_from == number
        assert item.connect_to == number[::-1].lstrip("0")
        assert to_api(item)["connectFrom"] == number


def test_addresses_are_strings_with_leading_zeros() -> None:
    base = _sample("vendor_last_page.json")["items"][0]
    [_, item], _ = decode_page(_page(_item("g", "1", "2"), _item("h", "4", '"01473555000"')))
    assert item.connect_from == "4" and item.connect_to == "01473555000"
    assert structure_interaction({**base, "connectFrom": 4.4e10}).connect_from == "44000000000"
    email = structure_interaction({**base, "connectFrom": "jo@example.com", "connectTo": None})
    assert email.connect_from == "jo@example.com" and email.connect_to is None


@pytest.mark.parametrize("number", ["1e25", "12345678901234567.0", "1.5", "true", "[1]"])
def test_inexact_addresses_raise_validation_error_only(number: str) -> None:
    """A float too large to hold every digit is refused; no other exception leaves."""
    body = _item("g", "1", number)
    with pytest.raises(ResponseValidationError, match="address"):
        decode_page(_page(body))
    with pytest.raises(ResponseValidationError, match="'g'"):
        structure_interaction(loads(body))


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


def _everything() -> dict[str, Any]:
    """An item with every field set, to a value of a type no other field takes, and extras."""
    agent = {"id": "1342", "team": "blue"}
    return {
        "guid": "2480fc2c-bbd7-427c-9439-02f76583aef5",
        "start": "2025-01-03T10:00:00.250Z",
        "connectFrom": "01473555000",
        "connectTo": "22222",
        "direction": "outbound",
        "handlingAgents": [agent, {"id": "7"}],
        "content": [
            {
                "contentKey": "k1",
                "type": "voicemail",
                "contentType": "audio/wav",
                "contentLength": 359,
                "lastModified": "2025-01-03T10:05:00Z",
                "owningAgent": agent,
                "owningInteractionPlan": {"id": "plan-1", "name": "IVR"},
                "properties": {"version": {"value": 3}, "duration": {"value": 1500}, "x": 1},
                "language": "en",
            }
        ],
        "channel": "voice",
    }


def test_every_field_lands_in_its_attribute() -> None:
    item = structure_interaction(_everything())
    assert type(item) is Interaction and item.guid == "2480fc2c-bbd7-427c-9439-02f76583aef5"
    assert item.start == datetime(2025, 1, 3, 10, 0, 0, 250000, tzinfo=UTC)
    assert (item.connect_from, item.connect_to) == ("01473555000", "22222")
    assert item.direction is Direction.OUTBOUND and item.extra == {"channel": "voice"}
    assert item.handling_agents == (AgentRef("1342", extra={"team": "blue"}), AgentRef("7"))
    [content] = item.content
    assert type(content) is Content and (content.content_key, content.type) == ("k1", "voicemail")
    assert (content.content_type, content.content_length) == ("audio/wav", 359)
    assert content.last_modified == datetime(2025, 1, 3, 10, 5, tzinfo=UTC)
    assert content.owning_agent == item.handling_agents[0]
    assert content.owning_interaction_plan == InteractionPlanRef("plan-1", extra={"name": "IVR"})
    assert content.properties == ContentProperties(timedelta(seconds=1.5), 3, extra={"x": 1})
    assert content.extra == {"language": "en"}
    assert to_api(item) == _everything()
    assert converter.structure(_everything(), Interaction) == item  # the one converter's hook
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        content.type = "x"  # type: ignore[misc]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # decoder: no state
@given(
    content=st.lists(
        st.fixed_dictionaries(
            {"contentKey": st.text(max_size=3), "type": st.sampled_from(["voicemail", "new"])},
            optional={
                "contentType": st.text(max_size=3),
                "contentLength": st.integers(0, 2**40),
                "lastModified": st.datetimes(datetime(1970, 1, 1), timezones=st.just(UTC)).map(
                    format_instant
                ),
                "owningAgent": st.fixed_dictionaries({"id": st.sampled_from(["1", "2"])}),
                "properties": st.fixed_dictionaries(
                    {}, optional={"duration": st.integers(0, 10**9).map(lambda v: {"value": v})}
                ),
                "sentiment": st.floats(allow_nan=False, allow_infinity=False) | st.none(),
            },
        ),
        max_size=3,
    ),
    agents=st.lists(st.sampled_from(["1342", "7"]), max_size=3),
)
def test_any_item_round_trips(content: list[dict[str, Any]], agents: list[str]) -> None:
    item = {
        "guid": "g",
        "start": "2025-01-01T00:00:00Z",
        "connectFrom": "1",
        "connectTo": "2",
        "direction": "inbound",
        "handlingAgents": [{"id": a} for a in agents],
        "content": content,
    }
    expected = copy.deepcopy(item)
    for piece in expected["content"]:
        piece.setdefault("properties", {})  # the API always sends it
    assert to_api(structure_interaction(item)) == expected
    [again], _ = decode_page(_page(json.dumps(item)))
    assert to_api(again) == expected


@pytest.mark.parametrize(
    "options",
    [
        {"slots": False},
        {"cache_hash": True},
        {"these": {"a": attrs.field(validator=attrs.validators.instance_of(int))}},
        {"these": {"a": attrs.field(converter=int)}},
    ],
)
def test_models_are_built_by_slot_only_when_init_does_nothing_more(options: Any) -> None:
    cls = attrs.frozen(type("Model", (), {"__annotations__": {"a": "int"}}), **options)
    with pytest.raises(TypeError, match="own __init__"):
        _constructor(cls)
    fast = _constructor(attrs.frozen(type("Model", (), {"__annotations__": {"a": "int"}})))
    assert fast(1).a == 1


def test_extras_keep_their_order() -> None:
    item = {**_everything(), "zeta": 1, "alpha": [2]}
    item["content"][0] = {**item["content"][0], "b": 1, "a": 2}
    parsed = structure_interaction(item)
    assert list(parsed.extra) == ["channel", "zeta", "alpha"]
    assert list(parsed.content[0].extra) == ["language", "b", "a"]
    assert list(to_api(parsed))[-3:] == ["channel", "zeta", "alpha"]  # written back in order


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_rests_while_a_page_is_decoded(
    enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading and structuring run with the cyclic collector off; it is left as it was found."""
    running: list[tuple[str, bool]] = []

    def spy(name: str, step: Any) -> Any:
        def spied(value: Any) -> Any:
            running.append((name, gc.isenabled()))
            return step(value)

        return spied

    monkeypatch.setattr(page_module, "loads_unscanned", spy("loads", page_module.loads_unscanned))
    monkeypatch.setattr(page_module, "loads", spy("loads", page_module.loads))
    monkeypatch.setattr(
        page_module, "_structure_page", spy("structure", page_module._structure_page)
    )
    monkeypatch.setattr(page_module, "structure_page", spy("structure", page_module.structure_page))
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        items, _ = decode_page(_page(json.dumps(_everything())))
        assert len(items) == 1 and gc.isenabled() is enabled
        with pytest.raises(ResponseValidationError):
            decode_page(_page('{"guid": "g"}'))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert running and set(running) == {("loads", False), ("structure", False)}


def _rebuilt(value: Any) -> Any:
    """``value`` with every model in it built again by its own ``__init__``."""
    if attrs.has(type(value)):
        fields = {f.name: _rebuilt(getattr(value, f.name)) for f in attrs.fields(type(value))}
        return type(value)(**fields)
    return tuple(map(_rebuilt, value)) if isinstance(value, tuple) else value


def test_structured_models_are_plain_instances_of_their_class() -> None:
    """Each object is filled on a builder, then becomes an instance of its model like any
    other: same class, fields, repr and equality, frozen, copied and pickled as one."""
    item = structure_interaction(_everything())
    [content] = item.content
    assert content.owning_agent is not None and content.owning_interaction_plan is not None
    models: list[Any] = [item, content, content.properties, content.owning_agent]
    models += [content.owning_interaction_plan, *item.handling_agents]
    classes = [Interaction, Content, ContentProperties, AgentRef, InteractionPlanRef]
    assert [type(model) for model in models] == [*classes, AgentRef, AgentRef]
    for model in models:
        again = _rebuilt(model)
        assert type(again) is type(model)
        assert model == again and repr(model) == repr(again)
        assert pickle.loads(pickle.dumps(model)) == model == copy.deepcopy(model)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            model.extra = {}
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            del model.extra
        assert weakref.ref(model)() is model
    assert attrs.evolve(content, content_length=1) == attrs.evolve(
        _rebuilt(content), content_length=1
    )
