"""A search page: its bytes as interactions, the common item shape read in one loop. No I/O.

``vccasync._converter``'s hooks are the reference: they accept every shape the API may send,
and their errors name what is wrong. A page spends most of its time in them on calls,
``dict.get``s and checks for rare shapes; ``_structure_items`` reads the common shape in one
loop instead and gives any other item to the reference whole, so every value and every error
is the reference's (the tests compare both on generated items). See docs/performance.md, CPU.
"""

from __future__ import annotations

import gc
from datetime import UTC, timedelta
from operator import itemgetter
from typing import Any

from ._converter import (
    _AGENTS,
    _CONTENT,
    _CONTENT_KEYS,
    _CONTENT_TYPES,
    _DIRECTIONS,
    _INTERACTION,
    _INTERACTION_KEYS,
    _MILLISECOND,
    _NO_EXTRA,
    _PLANS,
    _PROPERTIES,
    R,
    _fromisoformat,
    _new,
    _Refs,
    _structure_interaction,
    _unknown,
    structure_interaction,
)
from ._errors import ResponseValidationError
from ._jsonio import WIDE_FLOAT, loads, loads_unscanned
from ._models import (
    EMPTY_PROPERTIES,
    AgentRef,
    Content,
    ContentProperties,
    Interaction,
)

__all__ = ["decode_page", "structure_page"]


_ITEM_FIELDS = itemgetter(
    "guid", "start", "connectFrom", "connectTo", "direction", "handlingAgents", "content"
)
_CONTENT_FIELDS = itemgetter(
    "contentKey", "type", "contentType", "contentLength", "lastModified", "properties"
)


class _Uncommon(Exception):
    """An item the fast path leaves to the reference."""


_MILLISECONDS = tuple(timedelta(milliseconds=n) for n in range(1000))
_CACHED_SECONDS = 4096  # durations shorter than this many seconds are built from two tables
_SECONDS: dict[int, timedelta] = {}
_VERSIONS: dict[int, ContentProperties] = {}  # properties with a version only, shared
_SHARED_VERSIONS = 64


def _duration(millis: int) -> timedelta:
    """``_MILLISECOND * millis`` (a multiplication of Python integers inside ``timedelta``,
    twice the time of a sum): whole seconds and the rest, from tables (the seconds' filled
    as they come). Called only for a second not seen yet."""
    seconds, rest = divmod(millis, 1000)
    if not 0 <= seconds < _CACHED_SECONDS:
        return _MILLISECOND * millis
    whole = _SECONDS[seconds] = timedelta(seconds=seconds)
    return whole + _MILLISECONDS[rest]


def _versioned(version: int) -> ContentProperties:
    """Properties with a version only, shared (at most ``_SHARED_VERSIONS`` kept)."""
    props = ContentProperties(version=version)
    if len(_VERSIONS) < _SHARED_VERSIONS:
        _VERSIONS[version] = props
    return props


def _holds_wide(value: Any) -> bool:
    """Whether ``value`` (decoded JSON) holds a float that may be a wide integer read by orjson
    (see ``loads_unscanned``): one of magnitude ``WIDE_FLOAT`` or more."""
    stack = [value]
    while stack:
        value = stack.pop()
        kind = value.__class__
        if kind is float and not -WIDE_FLOAT < value < WIDE_FLOAT:
            return True
        if kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
    return False


def _structure_items(items: list[Any]) -> tuple[list[Interaction], bool]:
    """A page's items as ``_structure_interaction`` gives them (its error too, from the first
    malformed item), and whether a value that may be a wide integer read by orjson (see
    ``_holds_wide``) was kept: in an extra, or anywhere in an item left to the reference.

    The common shape: every field of an interaction and of its content present, of its usual
    JSON type (addresses strings or integers), instants in UTC (``Z``), references plain
    ``{"id": "..."}``, properties ``{}`` or exactly ``duration`` and ``version`` wrappers of
    integers; any other key is an extra. The objects are filled as ``_builder`` describes.
    """
    out: list[Interaction] = []
    append, new, parse, utc = out.append, _new, _fromisoformat, UTC
    directions, types, agents_shared = _DIRECTIONS, _CONTENT_TYPES, _AGENTS.shared
    millis, seconds, versions, empty, no_extra = (
        _MILLISECONDS,
        _SECONDS,
        _VERSIONS,
        EMPTY_PROPERTIES,
        _NO_EXTRA,
    )
    names: dict[int, str] = {}  # addresses read as numbers: they recur within a page
    wide = False
    for data in items:
        try:
            guid, start, source, target, direction, agents, contents = _ITEM_FIELDS(data)
            start = parse(start)
            if (
                guid.__class__ is not str
                or start.tzinfo is not utc
                or direction.__class__ is not str
                or agents.__class__ is not list
                or contents.__class__ is not list
            ):
                raise _Uncommon
            if source.__class__ is not str:
                if source.__class__ is not int:
                    raise _Uncommon
                name = names.get(source)
                if name is None:
                    name = names[source] = str(source)
                source = name
            if target.__class__ is not str:
                if target.__class__ is not int:
                    raise _Uncommon
                name = names.get(target)
                if name is None:
                    name = names[target] = str(target)
                target = name
            handling: tuple[AgentRef, ...]
            if len(agents) == 1:  # the most common case, inline
                agent = agents[0]
                ident = agent["id"]
                if ident.__class__ is not str or len(agent) != 1:
                    raise _Uncommon
                handling = (agents_shared.get(ident) or _AGENTS.plain(ident),)
            else:
                handling = tuple([_plain_ref(_AGENTS, agent) for agent in agents])
            pieces = []
            for raw in contents:
                key, kind, media, length, modified, props = _CONTENT_FIELDS(raw)
                if (
                    key.__class__ is not str
                    or kind.__class__ is not str
                    or media.__class__ is not str
                    or length.__class__ is not int
                    or props.__class__ is not dict
                ):
                    raise _Uncommon
                modified = parse(modified)
                if modified.tzinfo is not utc:
                    raise _Uncommon
                if props:
                    duration, version = props.get("duration"), props.get("version")
                    if duration is None:  # a version only
                        if len(props) != 1 or version.__class__ is not dict or len(version) != 1:
                            raise _Uncommon
                        version = version["value"]
                        if version.__class__ is not int:
                            raise _Uncommon
                        properties = versions.get(version) or _versioned(version)
                    else:
                        if duration.__class__ is not dict or len(duration) != 1:
                            raise _Uncommon
                        duration = duration["value"]
                        if duration.__class__ is not int:
                            raise _Uncommon
                        if version is not None:
                            if (
                                len(props) != 2
                                or version.__class__ is not dict
                                or len(version) != 1
                            ):
                                raise _Uncommon
                            version = version["value"]
                            if version.__class__ is not int:
                                raise _Uncommon
                        elif len(props) != 1:
                            raise _Uncommon
                        whole, rest = divmod(duration, 1000)
                        second = seconds.get(whole)
                        properties = new(_PROPERTIES)
                        properties.duration = (
                            _duration(duration) if second is None else second + millis[rest]
                        )
                        properties.version, properties.extra = version, no_extra
                        properties.__class__ = ContentProperties
                else:
                    properties = empty
                piece = new(_CONTENT)
                piece.content_key, piece.type = key, types.get(kind) or kind
                piece.content_type, piece.content_length = media, length
                piece.last_modified = modified
                if len(raw) == 6:  # the six above: no references, no extras
                    piece.owning_agent = piece.owning_interaction_plan = None
                    piece.extra = no_extra
                else:
                    agent, plan = raw.get("owningAgent"), raw.get("owningInteractionPlan")
                    piece.owning_agent = None if agent is None else _plain_ref(_AGENTS, agent)
                    piece.owning_interaction_plan = (
                        None if plan is None else _plain_ref(_PLANS, plan)
                    )
                    if _CONTENT_KEYS.issuperset(raw):
                        piece.extra = no_extra
                    else:
                        piece.extra = extra = _unknown(raw, _CONTENT_KEYS)
                        wide = wide or _holds_wide(extra)
                piece.properties = properties
                piece.__class__ = Content
                pieces.append(piece)
            obj = new(_INTERACTION)
            obj.guid, obj.start, obj.connect_from, obj.connect_to = guid, start, source, target
            obj.direction = directions.get(direction) or direction
            obj.handling_agents, obj.content = handling, tuple(pieces)
            if len(data) == 7:  # the seven above: no extras
                obj.extra = no_extra
            else:
                obj.extra = extra = _unknown(data, _INTERACTION_KEYS)
                wide = wide or _holds_wide(extra)
            obj.__class__ = Interaction
        except Exception:  # another shape (or a malformed item): the reference reads it
            obj = _structure_interaction(data)
            wide = wide or _holds_wide(data)
        append(obj)
    return out, wide


def _plain_ref(refs: _Refs[R], data: Any) -> R:
    """The shared reference of a plain ``{"id": "..."}``; another shape is ``_Uncommon``."""
    ident = data["id"]
    if ident.__class__ is not str or len(data) != 1:
        raise _Uncommon
    return refs.shared.get(ident) or refs.plain(ident)


def structure_page(data: Any) -> tuple[list[Interaction], str | None]:
    """A decoded search page as its interactions and next continuation token."""
    items, token, _ = _structure_page(data)
    return items, token


def _structure_page(data: Any) -> tuple[list[Interaction], str | None, bool]:
    """``structure_page``, and whether it kept a value that may be a wide integer read by
    orjson (see ``_structure_items``)."""
    try:
        items, meta = data["items"], data.get("meta") or {}
        token = meta.get("nextContinuationToken")
    except (TypeError, KeyError, AttributeError) as exc:
        raise ResponseValidationError(f"search page is not the documented shape: {exc!r}") from exc
    if token is not None and not isinstance(token, str):
        raise ResponseValidationError(f"continuation token is not a string: {token!r}")
    if not isinstance(items, list):
        raise ResponseValidationError("search page 'items' is not a list")
    try:
        interactions, wide = _structure_items(items)
    except Exception:  # one call per item on the way; name the first malformed one
        return [structure_interaction(item) for item in items], token, True
    return interactions, token, wide


def decode_page(body: bytes) -> tuple[list[Interaction], str | None]:
    """A search page's raw bytes as interactions and the next continuation token.

    Invalid JSON raises ``ValueError`` (the session's ``loads`` reports it).

    The page is read by orjson without ``loads``' scan for wide integers first: only when
    a value that may be one was kept (see ``_structure_page``), or the page is refused, is
    it read again by ``loads``, as it would have been from the start.

    The cyclic garbage collector is paused meanwhile (if it runs; as Mercurial's ``nogc`` does
    for the same reason). A page builds some 13 containers an item, none in a cycle, and the
    collector would run every 700 of them, tracing the page's tree, still alive, again and
    again, and promote it towards full collections of the whole heap: a fifth to a third of a
    page's time (measured; the most on a small heap). Reference counting frees everything as
    usual; the collector resumes after. (Another thread toggling the collector meanwhile may
    find it re-enabled when the page is read.)
    """
    if not gc.isenabled():
        return _decode_page(body)
    gc.disable()
    try:
        return _decode_page(body)
    finally:
        gc.enable()


def _decode_page(body: bytes) -> tuple[list[Interaction], str | None]:
    data = loads_unscanned(body)
    if data is not None:
        try:
            items, token, wide = _structure_page(data)
        except ResponseValidationError:
            pass  # perhaps a wide integer read as a float: the exact reading decides
        else:
            if not wide:
                return items, token
        del data
    return structure_page(loads(body))
