"""Deterministic fake VCC interactions, stored compactly, searched by bisection (no I/O).

Rows are kept column-wise (start in epoch milliseconds, 16-byte guid, flags, address and agent
indexes), sorted by ``(start, guid)``. The JSON-shaped dict of an interaction is built on demand
(:mod:`vccasync.fake._materialise`), so a million interactions cost ~40 bytes each. Build one
with :func:`vccasync.fake._generate.generate`.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, overload

import attrs

from vccasync._query import FILTER_BY_NAME, Filter
from vccasync.fake._columns import (
    AGENT_IDS,
    FLAG_CONTENT,
    FLAG_OUTBOUND,
    format_guid,
    unpack_agents,
)
from vccasync.fake._instants import to_us
from vccasync.fake._materialise import Item, Revision, materialise
from vccasync.fake._spec import DatasetSpec

__all__ = ["Dataset", "DatasetSpec", "Item", "Order", "Query", "Revision", "SortKey"]

SortKey = tuple[int, str]
"""``(start in epoch milliseconds, guid)``: the order of search results."""
Order = Literal["start", "guid", "hour"]
"""How a search pages: by ``(start, guid)`` (the API's order), by guid alone, or by the hour of
``start`` then guid."""
HOUR_MS = 3_600_000


@attrs.frozen
class Query:
    """One search: ``start <= item.start <= end`` (``< end`` when not end_inclusive) + filters."""

    start: datetime
    end: datetime
    end_inclusive: bool = True
    filters: Mapping[str, str] = attrs.field(factory=dict, hash=False)  # by name, as set

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
        self.revisions: dict[tuple[int, str], Revision] = {}  # pieces reprocessed upstream

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

    def revise(self, guid: str, key: str, *, length: int | None = None) -> None:
        """Reprocess a piece upstream now (a test's control): its ``lastModified`` one second
        later per revision, and its ``contentLength`` ``length`` when given (each revision has
        other bytes: see ``vccasync.fake._serve_content.piece_version``)."""
        pos = self.position(guid)
        if pos is None or all(c["contentKey"] != key for c in self.item(pos)["content"]):
            raise KeyError(f"no piece {key!r} of {guid!r}")
        before = self.revisions.get((pos, key), Revision())
        new_length = before.length if length is None else length
        self.revisions[pos, key] = Revision(before.count + 1, new_length)

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
            order.extend(sorted(bucket, key=self.raw_guid))
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

    def add_rows(self, rows: Iterable[tuple[int, ...]]) -> None:
        """Append rows ``(ms, guid bits, flags, from, to, agents)``, given in sort order."""
        for ms, bits, flags, frm, to, agents in rows:
            self.ms.append(ms)
            self._blob += bits.to_bytes(16, "big")
            self.flags.append(flags)
            self.from_idx.append(frm)
            self.to_idx.append(to)
            self.agents.append(agents)

    def raw_guid(self, pos: int) -> bytes:
        """The 16 bytes of the guid at ``pos`` (they sort as the guid's text does)."""
        return bytes(self._blob[16 * pos : 16 * pos + 16])

    def after(self, key: SortKey) -> int:
        """First position strictly after ``key``."""
        lo = bisect.bisect_left(self.ms, key[0])
        hi = bisect.bisect_right(self.ms, key[0], lo)
        return bisect.bisect_right(self.guids, key[1], lo, hi)

    def search(
        self,
        query: Query,
        *,
        after: SortKey | None = None,
        limit: int | None = None,
        order: Order = "start",
    ) -> tuple[list[int], bool]:
        """Positions matching ``query`` after ``after`` (at most ``limit``), and whether more match.

        Bisects to the range, then filters within it; the scan stops at the first match past
        ``limit``. In ``"guid"`` order the matches are sorted by guid (``after``'s instant is
        ignored), in ``"hour"`` order by the hour of their start, then guid.
        """
        if order != "start":
            return self._search_by_guid(query, after, limit, HOUR_MS if order == "hour" else 0)
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

    def _search_by_guid(
        self, query: Query, after: SortKey | None, limit: int | None, bucket_ms: int
    ) -> tuple[list[int], bool]:
        lo_ms, hi_ms = query.ms_bounds()
        lo = bisect.bisect_left(self.ms, lo_ms)
        stop = bisect.bisect_right(self.ms, hi_ms, lo)
        possible, match = self._matcher(query)
        if not possible:
            return [], False
        ms, raw, flags = self.ms, self.raw_guid, self.flags

        def key(p: int) -> tuple[int, bytes]:
            return (ms[p] // bucket_ms if bucket_ms else 0, raw(p))

        floor = (-1, b"")
        if after is not None:
            floor = (
                after[0] // bucket_ms if bucket_ms else 0,
                bytes.fromhex(after[1].replace("-", "")),
            )
        found = [
            p
            for p in range(lo, stop)
            if flags[p] & FLAG_CONTENT and (match is None or match(p)) and key(p) > floor
        ]
        found.sort(key=key)
        cap = len(found) if limit is None else limit
        return found[:cap], len(found) > cap

    def expected(
        self,
        start: datetime,
        end: datetime,
        *,
        end_inclusive: bool = True,
        **filters: str | None,
    ) -> list[Item]:
        """What the API returns for this search, all pages together (test ground truth);
        ``filters`` by name (``direction="inbound"``, see ``vccasync._query.FILTERS``)."""
        given = {name: value for name, value in filters.items() if value is not None}
        return [self.item(p) for p in self.search(Query(start, end, end_inclusive, given))[0]]

    def _matcher(self, query: Query) -> tuple[bool, Callable[[int], bool] | None]:
        """Whether anything can match, and a predicate on positions (None: no filters).

        Each filter matches as ``vccasync._query.FILTERS`` declares it: on this dataset's
        columns for the filters it has columns for, else on the interaction's JSON."""
        checks: list[Callable[[int], bool]] = []
        for name, value in query.filters.items():
            declared = FILTER_BY_NAME[name]
            check = self._column_check(name, value)
            if check is False:
                return False, None
            checks.append(check or _on_item(self, declared, value))
        if not checks:
            return True, None
        if len(checks) == 1:
            return True, checks[0]
        return True, lambda p: all(check(p) for check in checks)

    def _column_check(self, name: str, value: str) -> Callable[[int], bool] | Literal[False] | None:
        """A fast check on the columns (False: nothing can match; None: no column)."""
        if name == "direction":
            want = FLAG_OUTBOUND if value.casefold() == "outbound" else 0
            return lambda p: self.flags[p] & FLAG_OUTBOUND == want
        if name in ("connect_from", "connect_to"):
            column = self.from_idx if name == "connect_from" else self.to_idx
            text = value.casefold()
            ok = frozenset(i for i, a in enumerate(self._address_text) if a.startswith(text))
            return _member(column, ok) if ok else False
        if name == "handling_agent_id":
            if value not in AGENT_IDS:
                return False
            tag = AGENT_IDS.index(value) + 1
            return lambda p: tag in unpack_agents(self.agents[p])
        return None

    def item(self, pos: int) -> Item:
        """The interaction at ``pos`` in the API's JSON shape (a fresh dict)."""
        return materialise(self, pos)


def _member(column: array[int], allowed: frozenset[int]) -> Callable[[int], bool]:
    return lambda p: column[p] in allowed


def _on_item(data: Dataset, declared: Filter, value: str) -> Callable[[int], bool]:
    return lambda p: declared.matches(value, data.item(p))
