"""A day's shape (pure, no I/O): items per second by hour of the day, learnt from pages.

Contact centres are busy by day and quiet by night: a page that covered a night says little
of the morning after it. Every page adds the span it covered and its items to 24 hourly bins
(UTC: any fixed offset only shifts the bins); an hour no page covered yet is interpolated
between the nearest covered hours around the clock, so with a single page seen the shape is
flat at that page's density. ``expected`` counts the items of any span in O(1), and
``quantiles`` cuts a span into parts of equal expected items.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

__all__ = ["DayProfile", "crowdless_count"]

HOUR = 3600.0
HOURS = 24
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def crowdless_count(starts: Sequence[datetime]) -> Counter[datetime]:
    """Items per instant, the largest crowd (a tie, which says nothing of the density around
    it) counted as one item."""
    counts = Counter(starts)
    if counts:
        crowd, _ = counts.most_common(1)[0]
        counts[crowd] = 1
    return counts


def _seconds(moment: datetime) -> float:
    return (moment - _EPOCH).total_seconds()


class _Bins:
    """Items and seconds covered, by hour of the day."""

    __slots__ = ("items", "seconds")

    def __init__(self) -> None:
        self.items = [0.0] * HOURS
        self.seconds = [0.0] * HOURS

    def add(self, begin: datetime, end: datetime, counts: Mapping[datetime, int]) -> None:
        for moment, count in counts.items():
            self.items[int(_seconds(moment) // HOUR) % HOURS] += count  # UTC, whatever the offset
        at, stop = _seconds(begin), _seconds(end)
        days = int((stop - at) // (HOUR * HOURS))
        for hour in range(HOURS):
            self.seconds[hour] += days * HOUR
        at += days * HOUR * HOURS
        while at < stop:  # less than a day left
            hour = int(at // HOUR) % HOURS
            step = min(stop, (at // HOUR + 1) * HOUR) - at
            self.seconds[hour] += step
            at += step


class DayProfile:
    """Items per second in each hour of the day, over every span seen so far.

    Spans are added per ``source`` (a window), so that a source can be compared with the
    shape the others give (``scale``): a busy window is not measured against itself.
    """

    def __init__(self, _bins: tuple[list[float], list[float]] | None = None) -> None:
        self._all = _Bins()
        if _bins is not None:
            self._all.items, self._all.seconds = _bins
        self._sources: dict[Hashable, _Bins] = {}
        self._others: dict[Hashable, DayProfile] = {}  # each source's others, while valid
        self._cumulative: list[float] | None = None  # expected items from midnight to hour h

    def add(
        self, begin: datetime, end: datetime, starts: Sequence[datetime], source: Hashable = None
    ) -> int:
        """Pages covered ``[begin, end)`` completely and found ``starts`` (those in that
        span count); how many items that makes (a crowd counted as one)."""
        if end <= begin:
            return 0
        counts = crowdless_count([s for s in starts if begin <= s <= end])
        self._all.add(begin, end, counts)
        if source is not None:
            self._sources.setdefault(source, _Bins()).add(begin, end, counts)
        self._cumulative = None
        self._others.clear()
        return sum(counts.values())

    def forget(self, source: Hashable) -> None:
        """Keep ``source``'s spans in the shape, no longer apart."""
        self._sources.pop(source, None)
        self._others.pop(source, None)

    def relative(
        self, source: Hashable, begin: datetime, end: datetime, items: float
    ) -> tuple[float, DayProfile] | None:
        """The other sources' shape, and how much busier ``source`` was than it says, from
        ``items`` found in ``[begin, end)`` (None: no spans of ``source``'s own, or none of
        the others to compare with)."""
        own = self._sources.get(source)
        if own is None:
            return None
        others = self._others.get(source)
        if others is None:  # kept until the next span is added: every page asks for them all
            others = self._others[source] = DayProfile(
                (
                    [a - b for a, b in zip(self._all.items, own.items, strict=True)],
                    [a - b for a, b in zip(self._all.seconds, own.seconds, strict=True)],
                )
            )
        shaped = others.expected(begin, end)
        if not others.known or shaped <= 0:
            return None
        return items / shaped, others

    @property
    def known(self) -> bool:
        """Whether any span was seen."""
        return any(s > 1e-9 for s in self._all.seconds)

    def rates(self) -> list[float]:
        """Items per second by hour; an hour not seen lies on the line between its nearest
        seen neighbours (around the clock)."""
        items, seconds = self._all.items, self._all.seconds
        seen = [h for h in range(HOURS) if seconds[h] > 1e-9]
        if not seen:
            return [0.0] * HOURS
        known = {h: max(0.0, items[h]) / seconds[h] for h in seen}
        rates = []
        for hour in range(HOURS):
            if hour in known:
                rates.append(known[hour])
                continue
            i = bisect.bisect(seen, hour)
            before, after = seen[i - 1], seen[i % len(seen)]  # wrap around midnight
            gap = (after - before) % HOURS or HOURS
            weight = ((hour - before) % HOURS) / gap
            rates.append(known[before] + (known[after] - known[before]) * weight)
        return rates

    def _cum(self) -> list[float]:
        if self._cumulative is None:
            self._cumulative = [0.0, *itertools.accumulate(r * HOUR for r in self.rates())]
        return self._cumulative

    def _count_to(self, moment: float) -> float:
        """Expected items from the epoch to ``moment`` (seconds since the epoch)."""
        cum = self._cum()
        days, rest = divmod(moment, HOUR * HOURS)
        hour = int(rest // HOUR)
        return days * cum[HOURS] + cum[hour] + (cum[hour + 1] - cum[hour]) * (rest / HOUR - hour)

    def expected(self, begin: datetime, end: datetime) -> float:
        """Items expected in ``[begin, end)``."""
        if end <= begin:
            return 0.0
        return self._count_to(_seconds(end)) - self._count_to(_seconds(begin))

    def quantiles(self, begin: datetime, end: datetime, parts: int) -> list[datetime]:
        """The ``parts - 1`` instants inside ``(begin, end)`` that cut it into ``parts`` spans
        of equal expected items (equal spans when nothing is expected)."""
        low, high = _seconds(begin), _seconds(end)
        total = self._count_to(high) - self._count_to(low)
        if total <= 0:
            return [begin + (end - begin) * k / parts for k in range(1, parts)]
        cum = self._cum()
        per_day = cum[HOURS]
        cuts = []
        for k in range(1, parts):
            target = self._count_to(low) + total * k / parts
            days, rest = divmod(target, per_day)
            hour = min(bisect.bisect_right(cum, rest) - 1, HOURS - 1)
            while hour > 0 and cum[hour + 1] == cum[hour] and cum[hour] >= rest:
                hour -= 1  # an hour expecting nothing: cut at its start
            within = cum[hour + 1] - cum[hour]
            fraction = (rest - cum[hour]) / within if within > 0 else 0.0
            moment = (days * HOURS + hour + fraction) * HOUR
            cuts.append(_EPOCH + timedelta(seconds=min(max(moment, low), high)))
        return cuts
