"""Deterministic fake VCC interactions, stored compactly and materialised on demand (no I/O).

Rows are kept column-wise (start in epoch milliseconds, 16-byte guid, flags, address and agent
indexes), sorted by ``(start, guid)``. The JSON-shaped dict of an interaction is built on demand
from a random generator seeded by its guid, so a million interactions cost ~40 bytes each.
"""

from __future__ import annotations

import bisect
import functools
import random
from array import array
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, overload

import attrs

Item = dict[str, Any]
SortKey = tuple[int, str]
"""``(start in epoch milliseconds, guid)``: the order of search results."""

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS: Final = 86_400_000
FLAG_OUTBOUND: Final = 1
FLAG_CONTENT: Final = 2
_VARIANT_SHIFT: Final = 2
_N_VARIANTS: Final = 4
_AGENT_BITS: Final = 10
_AGENT_MASK: Final = (1 << _AGENT_BITS) - 1

AGENT_IDS: Final[tuple[str, ...]] = ("1342", "67833", *(str(2000 + i) for i in range(198)))
VOICE_LINES: Final[tuple[int | str, ...]] = (22222, 441473555000, "08005550100")
EMAIL_LINE: Final = "support@example.com"
CHAT_LINE: Final = "webchat-widget-1"
VOICE, EMAIL, CHAT = 0, 1, 2
CHANNELS: Final = ("voice", "email", "chat")

# Busier weekdays (Mon..Sun) and office hours; both only scale deterministic counts.
_WEEKDAY: Final = (1.2, 1.2, 1.2, 1.2, 1.1, 0.6, 0.4)
_HOURLY: Final = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 14, 16, 18, 17, 14, 10, 7, 5, 4, 3, 2, 1)
_HOUR_CUM: Final = tuple(sum(_HOURLY[: h + 1]) for h in range(24))
_QUIRKY_KEYS: Final = ("..", "rec(1).part,2", "a*b'c!d", "-_.,*'()")


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, rounded down."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def to_us(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime."""
    return (moment - EPOCH) // timedelta(microseconds=1)


@functools.lru_cache(maxsize=4096)
def _date(day: int) -> str:
    return (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def iso(ms: int, *, always_millis: bool = False) -> str:
    """ISO 8601 UTC text as the API writes it: ``...T10:00:00Z`` or ``...T10:00:00.250Z``."""
    sec, milli = divmod(ms, 1000)
    day, rem = divmod(sec, 86_400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    base = f"{_date(day)}T{hour:02d}:{minute:02d}:{second:02d}"
    return f"{base}.{milli:03d}Z" if milli or always_millis else f"{base}Z"


def _guid_bits(rng: random.Random) -> int:
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)  # version 4
    return (bits & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant


def format_guid(raw: bytes) -> str:
    """Canonical lowercase text of a 16-byte guid (order-preserving)."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _is_aware(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware")


@attrs.frozen
class DatasetSpec:
    """What to generate. Equal specs generate identical datasets.

    ``page_hint`` is the server's page size: when ``tie_at`` is given with ``tie_size == 0``,
    the tie gets ``page_hint + 200`` interactions so that it spans pages. ``content_scale``
    multiplies every ``contentLength`` (at least 1 byte): audio is 16 kB per second of
    recording at 1.0 (up to ~14 MB), so tests use a small scale and benchmarks a large one.
    ``extra_keys`` are added as attachments to every showcase interaction of the vendor's
    example (one on the first window edge): hostile keys for download tests.
    """

    seed: int = 0
    start: datetime = attrs.field(default=datetime(2025, 1, 1, tzinfo=UTC), validator=_is_aware)
    days: int = attrs.field(default=90, validator=attrs.validators.ge(1))
    per_day: int = attrs.field(default=150, validator=attrs.validators.ge(0))
    busy_day: int | None = None  # this day (0-based) has busy_factor times the traffic
    busy_factor: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    tie_size: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    tie_at: datetime | None = attrs.field(default=None, validator=_is_aware)
    edge_every: timedelta | None = timedelta(days=7)
    page_hint: int = 1000
    hidden_rate: float = 0.08
    millis_rate: float = 0.1
    quirk_rate: float = 0.05
    content_scale: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    extra_keys: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    @property
    def end(self) -> datetime:
        """End of the generated range; one interaction starts exactly here."""
        return self.start + timedelta(days=self.days)

    @property
    def resolved_tie(self) -> tuple[datetime, int] | None:
        """``(instant, size)`` of the bulk tie, or None without one."""
        size = self.tie_size or (self.page_hint + 200 if self.tie_at is not None else 0)
        if not size:
            return None
        default = self.start + timedelta(days=1 if self.days > 1 else 0, hours=10, minutes=30)
        return (self.tie_at or default, size)

    @property
    def edges(self) -> list[datetime]:
        """Window edges ``start + k * edge_every`` within ``[start, end]``."""
        if not self.edge_every or self.edge_every <= timedelta(0):
            return []
        count = (self.end - self.start) // self.edge_every
        return [self.start + k * self.edge_every for k in range(count + 1)]


@attrs.frozen
class Query:
    """One search: ``start <= item.start <= end`` (``< end`` when not end_inclusive) + filters."""

    start: datetime
    end: datetime
    end_inclusive: bool = True
    direction: str | None = None
    connect_from: str | None = None
    connect_to: str | None = None
    handling_agent_id: str | None = None

    def ms_bounds(self) -> tuple[int, int]:
        """Inclusive millisecond bounds equivalent to the microsecond-exact range."""
        lo = -(-to_us(self.start) // 1000)
        end_us = to_us(self.end)
        hi = end_us // 1000 if self.end_inclusive else -(-end_us // 1000) - 1
        return lo, hi


class _GuidView(Sequence[str]):
    """Guid strings of a dataset by position (for bisect)."""

    def __init__(self, blob: bytearray) -> None:
        self._blob = blob

    def __len__(self) -> int:
        return len(self._blob) // 16

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return format_guid(bytes(self._blob[16 * index : 16 * index + 16]))


class _LazySeq(Sequence[Any]):
    """A read-only sequence computed per position."""

    def __init__(self, size: int, get: Any) -> None:
        self._size, self._get = size, get

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._get(i) for i in range(*index.indices(self._size))]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(index)
        return self._get(index)


class Dataset:
    """Interactions sorted by ``(start, guid)``; build with :func:`generate`."""

    def __init__(self, spec: DatasetSpec, addresses: Sequence[int | str]) -> None:
        self.spec = spec
        self.addresses: tuple[int | str, ...] = tuple(addresses)
        self._address_text = [str(a).casefold() for a in self.addresses]
        self.ms = array("q")
        self._blob = bytearray()
        self.flags = bytearray()
        self.from_idx = array("i")
        self.to_idx = array("i")
        self.agents = array("i")
        self.guids: Sequence[str] = _GuidView(self._blob)
        self._by_guid: array[int] | None = None
        self._visible_count: int | None = None
        self.removed_keys: dict[int, frozenset[str]] = {}  # content deleted through the API

    def __len__(self) -> int:
        return len(self.ms)

    @property
    def items(self) -> Sequence[Item]:
        """All interactions (hidden ones too) as a lazy sequence of fresh dicts."""
        return _LazySeq(len(self), self.item)

    @property
    def keys(self) -> Sequence[SortKey]:
        """Sort keys parallel to :attr:`items`."""
        return _LazySeq(len(self), self.key)

    def key(self, pos: int) -> SortKey:
        """Sort key of the interaction at ``pos``."""
        return (self.ms[pos], self.guids[pos])

    def has_content(self, pos: int) -> bool:
        """Whether the API shows the interaction at ``pos``."""
        return bool(self.flags[pos] & FLAG_CONTENT)

    def hide(self, pos: int) -> None:
        """Take the interaction at ``pos`` out of every answer (deleted through the API)."""
        self.flags[pos] &= ~FLAG_CONTENT
        self._visible_count = None

    @property
    def visible_count(self) -> int:
        """Number of interactions with content."""
        if self._visible_count is None:
            self._visible_count = sum(1 for f in self.flags if f & FLAG_CONTENT)
        return self._visible_count

    def visible(self) -> Iterator[Item]:
        """Interactions with content, in order."""
        return (self.item(p) for p in range(len(self)) if self.flags[p] & FLAG_CONTENT)

    def build_guid_index(self) -> None:
        """Build the guid index now (~0.6 s per million) rather than on the first lookup."""
        if self._by_guid is not None:
            return
        buckets = [array("i") for _ in range(256)]  # by first byte: small sort transients
        blob = self._blob
        for pos in range(len(self)):
            buckets[blob[16 * pos]].append(pos)
        order = array("i")
        for bucket in buckets:
            order.extend(sorted(bucket, key=self._raw_guid))
        self._by_guid = order

    def position(self, guid: str) -> int | None:
        """Position of ``guid`` (index built on first use), or None."""
        self.build_guid_index()
        assert self._by_guid is not None
        order, key = self._by_guid, guid.lower()
        i = bisect.bisect_left(order, key, key=self.guids.__getitem__)
        return order[i] if i < len(order) and self.guids[order[i]] == key else None

    def get(self, guid: str) -> Item | None:
        """The interaction with ``guid`` (hidden ones too), or None."""
        pos = self.position(guid)
        return None if pos is None else self.item(pos)

    def _raw_guid(self, pos: int) -> bytes:
        return bytes(self._blob[16 * pos : 16 * pos + 16])

    def after(self, key: SortKey) -> int:
        """First position strictly after ``key``."""
        lo = bisect.bisect_left(self.ms, key[0])
        hi = bisect.bisect_right(self.ms, key[0], lo)
        return bisect.bisect_right(self.guids, key[1], lo, hi)

    def search(
        self, query: Query, *, after: SortKey | None = None, limit: int | None = None
    ) -> tuple[list[int], bool]:
        """Positions matching ``query`` after ``after`` (at most ``limit``), and whether more match.

        Bisects to the range, then filters within it; the scan stops at the first match past
        ``limit``.
        """
        lo_ms, hi_ms = query.ms_bounds()
        pos = bisect.bisect_left(self.ms, lo_ms)
        if after is not None:
            pos = max(pos, self.after(after))
        stop = bisect.bisect_right(self.ms, hi_ms, pos)
        possible, match = self._matcher(query)
        if not possible:
            return [], False
        found: list[int] = []
        cap = len(self) if limit is None else limit
        flags = self.flags
        for p in range(pos, stop):
            if flags[p] & FLAG_CONTENT and (match is None or match(p)):
                if len(found) == cap:
                    return found, True
                found.append(p)
        return found, False

    def expected(
        self,
        start: datetime,
        end: datetime,
        *,
        end_inclusive: bool = True,
        direction: str | None = None,
        connect_from: str | None = None,
        connect_to: str | None = None,
        handling_agent_id: str | None = None,
    ) -> list[Item]:
        """What the API returns for this search, all pages together (test ground truth)."""
        query = Query(
            start, end, end_inclusive, direction, connect_from, connect_to, handling_agent_id
        )
        return [self.item(p) for p in self.search(query)[0]]

    def _matcher(self, query: Query) -> tuple[bool, Callable[[int], bool] | None]:
        """Whether anything can match, and a predicate on positions (None: no filters)."""
        checks: list[Callable[[int], bool]] = []
        if query.direction is not None:
            want = FLAG_OUTBOUND if query.direction.lower() == "outbound" else 0
            checks.append(lambda p: self.flags[p] & FLAG_OUTBOUND == want)
        for prefix, column in (
            (query.connect_from, self.from_idx),
            (query.connect_to, self.to_idx),
        ):
            if prefix is not None:
                text = prefix.casefold()
                ok = frozenset(i for i, a in enumerate(self._address_text) if a.startswith(text))
                if not ok:
                    return False, None
                checks.append(_member(column, ok))
        if query.handling_agent_id is not None:
            if query.handling_agent_id not in AGENT_IDS:
                return False, None
            tag = AGENT_IDS.index(query.handling_agent_id) + 1
            checks.append(lambda p: tag in _unpack_agents(self.agents[p]))
        if not checks:
            return True, None
        if len(checks) == 1:
            return True, checks[0]
        return True, lambda p: all(check(p) for check in checks)

    def item(self, pos: int) -> Item:
        """The interaction at ``pos`` in the API's JSON shape (a fresh dict)."""
        return _materialise(self, pos)


def _member(column: array[int], allowed: frozenset[int]) -> Callable[[int], bool]:
    return lambda p: column[p] in allowed


def _unpack_agents(packed: int) -> tuple[int, ...]:
    return tuple(t for t in (packed & _AGENT_MASK, (packed >> 10) & _AGENT_MASK, packed >> 20) if t)


def _pack_agents(indexes: Sequence[int]) -> int:
    packed = 0
    for n, idx in enumerate(indexes[:3]):
        packed |= (idx + 1) << (_AGENT_BITS * n)
    return packed


def _address_pool(rng: random.Random) -> tuple[list[int | str], list[int]]:
    """Customer addresses (with their channel), then the company's own lines."""
    pool: list[int | str] = [14154204204, 33890021]
    kinds = [VOICE, VOICE]
    names = ("jane.doe", "john.smith", "a.nguyen", "maria.garcia", "li.wei", "o'brien", "zoe")
    for n in range(4000):
        roll = rng.random()
        if roll < 0.35:
            pool.append(14150000000 + rng.randrange(10_000_000))
        elif roll < 0.5:
            pool.append(447700900000 + rng.randrange(1000) * 1000 + n % 1000)
        elif roll < 0.65:
            pool.append(f"0{rng.choice(('1473', '7700', '20'))}{rng.randrange(10**6):06d}")
        elif roll < 0.7:
            pool.append(f"+441473{rng.randrange(10**6):06d}")
        elif roll < 0.85:
            pool.append(f"{rng.choice(names)}{n}@{rng.choice(('example.com', 'Example.org'))}")
            kinds.append(EMAIL)
            continue
        else:
            handle = f"{rng.getrandbits(32):08x}"
            pool.append(rng.choice((f"webchat:{handle}", f"@user_{handle[:5]}")))
            kinds.append(CHAT)
            continue
        kinds.append(VOICE)
    pool += [*VOICE_LINES, EMAIL_LINE, CHAT_LINE]
    kinds += [VOICE] * len(VOICE_LINES) + [EMAIL, CHAT]
    return pool, kinds


class _Builder:
    """Draws rows ``(ms, guid bits, flags, from, to, agents)`` from one seeded generator."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        pool, kinds = _address_pool(random.Random(f"vcc-addresses-{spec.seed}"))
        self.pool, self.kinds = pool, kinds
        self.customers = len(pool) - len(VOICE_LINES) - 2
        self.index = {a: i for i, a in enumerate(pool)}

    def row(self, ms: int, *, visible: bool = False, variant: int = 0) -> tuple[int, ...]:
        rng = self.rng
        customer = int(rng.random() * self.customers)
        kind = self.kinds[customer]
        outbound = kind == VOICE and rng.random() < 0.3
        line = self.index[
            EMAIL_LINE
            if kind == EMAIL
            else CHAT_LINE
            if kind == CHAT
            else VOICE_LINES[int(rng.random() * len(VOICE_LINES))]
        ]
        n_agents = (0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3)[
            int(rng.random() * 20)
        ]
        agents: list[int] = []
        while len(agents) < n_agents:
            agent = int(rng.random() * len(AGENT_IDS))
            if agent not in agents:
                agents.append(agent)
        if variant:
            customer, line, outbound, agents = self._variant_row(variant)
        frm, to = (line, customer) if outbound else (customer, line)
        shown = visible or rng.random() >= self.spec.hidden_rate
        flags = (FLAG_OUTBOUND if outbound else 0) | (FLAG_CONTENT if shown else 0)
        flags |= variant << _VARIANT_SHIFT
        return (ms, _guid_bits(rng), flags, frm, to, _pack_agents(agents))

    def _variant_row(self, variant: int) -> tuple[int, int, bool, list[int]]:
        """Fixed addresses of the showcase interactions (see :func:`_variant_content`)."""
        if variant == 1:
            return self.index[14154204204], self.index[22222], False, [0]
        if variant == 2:
            leading_zero = next(i for i, a in enumerate(self.pool) if str(a).startswith("01473"))
            return leading_zero, self.index["08005550100"], True, [1, 2, 3]
        kind = EMAIL if variant == 3 else CHAT
        customer = self.kinds.index(kind)
        return customer, self.index[EMAIL_LINE if kind == EMAIL else CHAT_LINE], False, [4]

    def day_offsets(self, day: int) -> list[int]:
        """Millisecond offsets within one day, busier on weekdays and office hours."""
        spec, rng = self.spec, self.rng
        weekday = (spec.start + timedelta(days=day)).weekday()
        scale = _WEEKDAY[weekday] * 7 / sum(_WEEKDAY) * (0.9 + 0.2 * rng.random())
        if day == spec.busy_day:
            scale *= spec.busy_factor
        count = round(spec.per_day * scale)
        hours = rng.choices(range(24), cum_weights=_HOUR_CUM, k=count)
        offsets = []
        for hour in hours:
            ms = hour * 3_600_000 + int(rng.random() * 3600) * 1000
            if rng.random() < spec.millis_rate:
                ms += 1 + int(rng.random() * 999)
            offsets.append(ms)
        return offsets


def generate(spec: DatasetSpec) -> Dataset:
    """Generate the dataset for ``spec`` (deterministic; ~1 s per 500k interactions)."""
    builder = _Builder(spec)
    start_ms = to_ms(spec.start)
    extras: dict[int, list[tuple[int, ...]]] = {}

    def add(ms: int, **kw: Any) -> None:
        extras.setdefault((ms - start_ms) // DAY_MS, []).append(builder.row(ms, **kw))

    for k, edge in enumerate(spec.edges):
        add(to_ms(edge), visible=True, variant=1 + k % _N_VARIANTS)
        if k:
            add(to_ms(edge) - 1, visible=True)
    add(to_ms(spec.end), visible=True, variant=2)
    if (tie := spec.resolved_tie) is not None:
        for _ in range(tie[1]):
            add(to_ms(tie[0]), visible=True)

    data = Dataset(spec, builder.pool)
    for day in sorted(set(range(spec.days)) | extras.keys()):
        day_ms = start_ms + day * DAY_MS
        rows = extras.pop(day, [])
        if 0 <= day < spec.days:
            rows += [builder.row(day_ms + off) for off in builder.day_offsets(day)]
        rows.sort()
        for ms, bits, flags, frm, to, agents in rows:
            data.ms.append(ms)
            data._blob += bits.to_bytes(16, "big")
            data.flags.append(flags)
            data.from_idx.append(frm)
            data.to_idx.append(to)
            data.agents.append(agents)
    return data


def _materialise(data: Dataset, pos: int) -> Item:
    raw = data._raw_guid(pos)
    rng = random.Random(int.from_bytes(raw, "big") ^ data.spec.seed)
    flags, ms = data.flags[pos], data.ms[pos]
    frm, to = data.addresses[data.from_idx[pos]], data.addresses[data.to_idx[pos]]
    customer = to if flags & FLAG_OUTBOUND else frm
    agents = [AGENT_IDS[t - 1] for t in _unpack_agents(data.agents[pos])]
    item: Item = {
        "guid": format_guid(raw),
        "start": iso(ms),
        "connectFrom": frm,
        "connectTo": to,
        "direction": "outbound" if flags & FLAG_OUTBOUND else "inbound",
        "handlingAgents": [{"id": a} for a in agents],
        "content": [],
    }
    variant = flags >> _VARIANT_SHIFT
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
