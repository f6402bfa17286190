"""The one cattrs converter: API JSON (camelCase) <-> attrs models (snake_case). No I/O.

``structure_interaction`` reads one search item; ``to_api`` writes an interaction back in the
API's own JSON shape (camelCase, addresses as strings, unknown fields kept) for sinks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import ResponseValidationError
from .models import (
    EMPTY_PROPERTIES,
    AgentRef,
    Content,
    ContentProperties,
    ContentType,
    Direction,
    Interaction,
    InteractionPlanRef,
)

try:  # orjson is an optional speed-up; the standard library is the fallback
    import orjson

    _loads: Callable[[bytes | str], Any] = orjson.loads
    _fast_errors: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - exercised only without the extra
    _loads = json.loads
    _fast_errors = ()

__all__ = [
    "converter",
    "decode_page",
    "format_instant",
    "loads",
    "parse_instant",
    "structure_interaction",
    "structure_page",
    "to_api",
]

T = TypeVar("T")
_CAMEL = re.compile(r"_([a-z])")


class _LossyNumber(Exception):
    """A JSON number came back as a float too large to hold every digit."""


def loads(body: bytes | str) -> Any:
    """Decode JSON (orjson when installed); invalid JSON raises ``ValueError``."""
    try:
        return _loads(body)
    except _fast_errors:
        return json.loads(body)


def decode_page(body: bytes) -> tuple[list[Interaction], str | None]:
    """A search page's raw bytes as interactions and the next continuation token.

    orjson reads integers beyond 64 bits as floats; a page with such an address is decoded
    again by the standard library, which keeps every digit.
    """
    try:
        return structure_page(loads(body))
    except _LossyNumber:
        return structure_page(json.loads(body))


def parse_instant(value: str | datetime) -> datetime:
    """An aware datetime from an ISO 8601 string or datetime; naive values are taken as UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_instant(moment: datetime) -> str:
    """ISO 8601 in UTC with ``Z``, as the API writes it (milliseconds only when present)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if moment.microsecond % 1000 == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _address(value: Any, _: object = None) -> str | None:
    """Phone numbers arrive as JSON numbers: expose every address as a string."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError(f"an address cannot be {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        if abs(value) >= 2**53:
            raise _LossyNumber(value)
        return str(int(value))
    raise TypeError(f"an address cannot be {value!r}")


def _known(kind: type[Direction] | type[ContentType]) -> Callable[[Any, object], Any]:
    """A hook for a known set of strings: members by value, new values kept as plain strings."""
    members: dict[str, Any] = {m.value: m for m in kind}

    def structure(value: Any, _: object = None) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return members.get(value, value)

    return structure


def _optional(structure: Callable[[Any], T]) -> Callable[[Any, object], T | None]:
    """A hook for ``X | None`` that calls ``structure`` directly (no per-value dispatch)."""

    def hook(value: Any, _: object = None) -> T | None:
        return None if value is None else structure(value)

    return hook


def _tuple_of(conv: cattrs.Converter, cls: type[T]) -> Callable[[Any, object], tuple[T, ...]]:
    """A hook for ``tuple[cls, ...]`` that calls ``cls``'s hook directly."""
    hook = conv.get_structure_hook(cls)

    def structure(values: Any, _: object = None) -> tuple[T, ...]:
        if isinstance(values, str | bytes | Mapping):
            raise TypeError(f"expected a list, got {type(values).__name__}")
        return tuple([hook(v, cls) for v in values])

    return structure


_NO_EXTRA: Mapping[str, Any] = EMPTY_PROPERTIES.extra


def _structure_properties(raw: Mapping[str, Any], _: object = None) -> ContentProperties:
    if not raw:
        return EMPTY_PROPERTIES
    duration = version = None
    extra = dict(raw)
    if _is_value(raw.get("duration")):
        duration = timedelta(milliseconds=extra.pop("duration")["value"])
    if _is_value(raw.get("version")):
        version = int(extra.pop("version")["value"])
    return ContentProperties(duration=duration, version=version, extra=extra or _NO_EXTRA)


def _is_value(node: Any) -> bool:
    """Whether ``node`` is the API's ``{"value": ...}`` wrapper and nothing else."""
    return isinstance(node, dict) and len(node) == 1 and "value" in node


def _unstructure_properties(props: ContentProperties) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if props.version is not None:
        out["version"] = {"value": props.version}
    if props.duration is not None:
        millis = props.duration / timedelta(milliseconds=1)
        out["duration"] = {"value": int(millis) if millis.is_integer() else millis}
    out.update(props.extra)
    return out


def _api_name(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def _register(conv: cattrs.Converter, cls: type[Any], **fields: Any) -> None:
    """Structure/unstructure ``cls`` under camelCase names, with unknown keys kept in ``extra``."""
    names = {a.name: _api_name(a.name) for a in attrs.fields(cls) if a.name != "extra"}
    overrides = {n: override(rename=api, **fields.get(n, {})) for n, api in names.items()}
    known = frozenset(names.values())
    structure = make_dict_structure_fn(
        cls,
        conv,
        extra=override(omit=True),
        **overrides,  # type: ignore[arg-type]
    )
    unstructure = make_dict_unstructure_fn(
        cls,
        conv,
        _cattrs_omit_if_default=True,
        extra=override(omit=True),
        **overrides,  # type: ignore[arg-type]
    )

    def structure_with_extra(data: Mapping[str, Any], _: object) -> Any:
        obj = structure(data, cls)
        if not known.issuperset(data):
            # the instance is new and not yet shared: set its ``extra`` as attrs' own
            # __init__ does for frozen classes (cheaper than attrs.evolve's second __init__)
            object.__setattr__(obj, "extra", {k: v for k, v in data.items() if k not in known})
        return obj

    def unstructure_with_extra(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = unstructure(obj)
        if obj.extra:
            out.update(obj.extra)
        return out

    conv.register_structure_hook(cls, structure_with_extra)
    conv.register_unstructure_hook(cls, unstructure_with_extra)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)  # faster; errors are wrapped below
    conv.register_structure_hook(datetime, lambda v, _: parse_instant(v))
    conv.register_unstructure_hook(datetime, format_instant)
    conv.register_structure_hook(ContentProperties, _structure_properties)
    conv.register_unstructure_hook(ContentProperties, _unstructure_properties)
    plain = {"unstruct_hook": lambda v: v}
    always = {"omit_if_default": False}  # the API always sends these, even when empty
    # Field hooks call their structuring directly: cattrs' generic Optional/tuple dispatch
    # costs more than the work itself on a 1,000-item page.
    _register(conv, AgentRef, id={"struct_hook": lambda v, _: str(v)})
    _register(conv, InteractionPlanRef, id={"struct_hook": lambda v, _: str(v)})
    agent_hook = conv.get_structure_hook(AgentRef)
    plan_hook = conv.get_structure_hook(InteractionPlanRef)
    _register(
        conv,
        Content,
        content_key={"struct_hook": lambda v, _: str(v)},
        type={"struct_hook": _known(ContentType), **plain},
        content_type={"struct_hook": _optional(str)},
        content_length={"struct_hook": _optional(int)},
        last_modified={"struct_hook": _optional(parse_instant)},
        owning_agent={"struct_hook": _optional(lambda v: agent_hook(v, AgentRef))},
        owning_interaction_plan={
            "struct_hook": _optional(lambda v: plan_hook(v, InteractionPlanRef))
        },
        properties=always,
    )
    _register(
        conv,
        Interaction,
        guid={"struct_hook": lambda v, _: str(v)},
        start={"struct_hook": lambda v, _: parse_instant(v)},
        connect_from={"struct_hook": _address},
        connect_to={"struct_hook": _address},
        direction={"struct_hook": _known(Direction), **plain},
        handling_agents={"struct_hook": _tuple_of(conv, AgentRef), **always},
        content={"struct_hook": _tuple_of(conv, Content), **always},
    )
    return conv


converter = _make_converter()
_structure_one = converter.get_structure_hook(Interaction)


def structure_interaction(item: Mapping[str, Any]) -> Interaction:
    """One API item (decoded JSON) as an ``Interaction``; a malformed item raises."""
    try:
        return _structure_one(item, Interaction)  # type: ignore[no-any-return]
    except _LossyNumber:
        raise
    except Exception as exc:  # cattrs raises many shapes of error; give one
        guid = item.get("guid") if isinstance(item, Mapping) else None
        raise ResponseValidationError(f"malformed interaction {guid!r}: {_describe(exc)}") from exc


def structure_page(data: Any) -> tuple[list[Interaction], str | None]:
    """A decoded search page as its interactions and next continuation token."""
    try:
        items, meta = data["items"], data.get("meta") or {}
        token = meta.get("nextContinuationToken")
    except (TypeError, KeyError, AttributeError) as exc:
        raise ResponseValidationError(f"search page is not the documented shape: {exc!r}") from exc
    if token is not None and not isinstance(token, str):
        raise ResponseValidationError(f"continuation token is not a string: {token!r}")
    if not isinstance(items, list):
        raise ResponseValidationError("search page 'items' is not a list")
    return [structure_interaction(item) for item in items], token


def to_api(interaction: Interaction) -> dict[str, Any]:
    """An interaction in the API's JSON shape: camelCase, addresses as strings, extras kept."""
    return converter.unstructure(interaction, Interaction)  # type: ignore[no-any-return]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        leaves = [_describe(e) for e in exc.exceptions]
        return "; ".join(leaves)
    return f"{type(exc).__name__}: {exc}"
