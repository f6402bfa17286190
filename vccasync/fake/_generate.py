"""Generating a fake dataset from a :class:`DatasetSpec`: deterministic rows, day by day."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any, Final

from vccasync.fake._columns import (
    AGENT_IDS,
    CHAT,
    CHAT_LINE,
    EMAIL,
    EMAIL_LINE,
    FLAG_CONTENT,
    FLAG_OUTBOUND,
    N_VARIANTS,
    VARIANT_SHIFT,
    VOICE,
    VOICE_LINES,
    pack_agents,
)
from vccasync.fake._dataset import Dataset
from vccasync.fake._instants import DAY_MS, to_ms
from vccasync.fake._spec import DatasetSpec

__all__ = ["generate"]

# Busier weekdays (Mon..Sun) and office hours; both only scale deterministic counts.
_WEEKDAY: Final = (1.2, 1.2, 1.2, 1.2, 1.1, 0.6, 0.4)
_HOURLY: Final = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 14, 16, 18, 17, 14, 10, 7, 5, 4, 3, 2, 1)
_HOUR_CUM: Final = tuple(sum(_HOURLY[: h + 1]) for h in range(24))


def _guid_bits(rng: random.Random) -> int:
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)  # version 4
    return (bits & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant


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
        flags |= variant << VARIANT_SHIFT
        return (ms, _guid_bits(rng), flags, frm, to, pack_agents(agents))

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
        if spec.busy_day is not None and 0 <= day - spec.busy_day < spec.busy_days:
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
        add(to_ms(edge), visible=True, variant=1 + k % N_VARIANTS)
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
        data.add_rows(rows)
    return data
