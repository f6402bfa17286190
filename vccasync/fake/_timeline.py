"""Time-varying data for the fake API: content revealed late, pieces updated, interactions
removed, new interactions appearing as the clock passes their start.

A :class:`Timeline` is an overlay on a :class:`~vccasync.fake._dataset.Dataset`, consulted by
the search, get-one and content handlers through :func:`reveal` and :func:`reveal_one`
(without a timeline both return what they are given). At the clock's ``now``:

- an interaction starting after ``now`` does not exist yet;
- a *late* piece (share ``late_rate``) appears ``settle * u`` after its interaction's start;
  an interaction with no piece revealed yet is not shown at all (as the real API);
- an *updated* piece (share ``update_rate`` of the late ones) changes once more, later:
  ``lastModified`` becomes the update instant (at least a second later than it was) and
  ``properties.version`` goes up by one (or ``contentLength`` by one byte without a version);
- a *removed* interaction (share ``removal_rate``) disappears at ``origin + removal_within * u``
  (retention rules, deletions), ``origin`` being the clock's ``now`` when the timeline is made.

Every draw ``u`` comes from a hash of the dataset seed, the guid and the content key: the same
dataset and clock give the same answers. Tests use a :class:`FakeClock` they advance by hand
(no sleeping); demos use the wall clock (``FakeClock()`` with no instant).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from vccasync.fake._dataset import Dataset, DatasetSpec, Item
from vccasync.fake._instants import iso, to_ms

__all__ = ["FakeClock", "Timeline", "TimelineSpec", "demo_spec", "reveal", "reveal_one"]

_SCALE: Final = float(1 << 64)
_SHARE: Final = attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0))


class FakeClock:
    """The fake's idea of now: the wall clock, or an instant tests move with :meth:`advance`."""

    def __init__(self, now: datetime | None = None) -> None:
        if now is not None and now.utcoffset() is None:
            raise ValueError("the clock's instant must be timezone-aware")
        self._now = now

    @property
    def manual(self) -> bool:
        """Whether this clock only moves when told to."""
        return self._now is not None

    def now(self) -> datetime:
        """The current instant (aware, UTC)."""
        return datetime.now(UTC) if self._now is None else self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move a manual clock forward by ``delta``; the new instant."""
        if self._now is None:
            raise ValueError("the wall clock cannot be advanced")
        self._now += delta
        return self._now


@attrs.frozen
class TimelineSpec:
    """How the data changes with time (shares are of pieces or interactions)."""

    late_rate: float = attrs.field(default=0.3, validator=_SHARE)
    settle: timedelta = timedelta(hours=12)
    update_rate: float = attrs.field(default=0.2, validator=_SHARE)
    removal_rate: float = attrs.field(default=0.02, validator=_SHARE)
    removal_within: timedelta = timedelta(hours=2)


@attrs.define(eq=False)
class Timeline:
    """The schedule of one dataset against one clock (see the module docstring)."""

    clock: FakeClock
    spec: TimelineSpec = attrs.field(factory=TimelineSpec)
    seed: int = 0
    origin: datetime = attrs.field(
        default=attrs.Factory(lambda self: self.clock.now(), takes_self=True)
    )

    @classmethod
    def for_dataset(
        cls, dataset: Dataset, clock: FakeClock, spec: TimelineSpec | None = None
    ) -> Timeline:
        """A timeline seeded by the dataset's seed."""
        return cls(clock, spec or TimelineSpec(), dataset.spec.seed)

    def _draw(self, *parts: str) -> float:
        text = "\x1f".join((str(self.seed), *parts)).encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest()) / _SCALE

    def removed_at(self, guid: str) -> datetime | None:
        """When the interaction ``guid`` is removed, or None if never."""
        if self._draw(guid, "removed") >= self.spec.removal_rate:
            return None
        return self.origin + self.spec.removal_within * self._draw(guid, "removed-at")

    def revealed_at(self, start: datetime, guid: str, key: str) -> datetime:
        """When the piece ``key`` of ``guid`` (starting at ``start``) appears."""
        if self._draw(guid, key, "late") >= self.spec.late_rate:
            return start
        return start + self.spec.settle * self._draw(guid, key, "late-at")

    def updated_at(self, start: datetime, guid: str, key: str) -> datetime | None:
        """When the piece changes once more after it appeared, or None if never."""
        revealed = self.revealed_at(start, guid, key)
        if revealed == start or self._draw(guid, key, "update") >= self.spec.update_rate:
            return None
        rest = start + self.spec.settle - revealed
        return revealed + rest * self._draw(guid, key, "update-at") + timedelta(seconds=1)

    def view(self, item: Item) -> Item | None:
        """``item`` as the API shows it now (a new dict), or None when it is not shown."""
        now = self.clock.now()
        guid, start = item["guid"], _instant(item["start"])
        if start > now:
            return None
        removed = self.removed_at(guid)
        if removed is not None and removed <= now:
            return None
        pieces = []
        for piece in item.get("content", ()):
            key = piece["contentKey"]
            if self.revealed_at(start, guid, key) > now:
                continue
            updated = self.updated_at(start, guid, key)
            pieces.append(piece if updated is None or updated > now else _updated(piece, updated))
        return {**item, "content": pieces} if pieces else None

    def view_all(self, items: Iterable[Item]) -> list[Item]:
        """The shown ones of ``items``, as shown."""
        return [shown for item in items if (shown := self.view(item)) is not None]

    def expected(
        self, dataset: Dataset, start: datetime, end: datetime, **filters: Any
    ) -> list[Item]:
        """What a search returns now, all pages together (test ground truth)."""
        return self.view_all(dataset.expected(start, end, **filters))


def reveal(timeline: Timeline | None, items: list[Item]) -> list[Item]:
    """The search handler's hook: ``items`` as shown now (all of them without a timeline)."""
    return items if timeline is None else timeline.view_all(items)


def reveal_one(timeline: Timeline | None, item: Item | None) -> Item | None:
    """The get-one and content handlers' hook: the item as shown now, or None."""
    return item if timeline is None or item is None else timeline.view(item)


def demo_spec(
    now: datetime | None = None, *, days: int = 30, per_day: int = 150, seed: int = 0
) -> DatasetSpec:
    """A dataset around ``now`` (default: the wall clock): ``days`` whole UTC days before
    today, today, and tomorrow (interactions appear as the clock passes them)."""
    moment = now or datetime.now(UTC)
    today = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return DatasetSpec(
        seed=seed, start=today - timedelta(days=days), days=days + 2, per_day=per_day
    )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _updated(piece: Item, when: datetime) -> Item:
    modified = max(when, _instant(piece["lastModified"]) + timedelta(seconds=1))
    out = {**piece, "lastModified": iso(to_ms(modified))}
    version = piece.get("properties", {}).get("version")
    if isinstance(version, dict) and isinstance(version.get("value"), int):
        out["properties"] = {**piece["properties"], "version": {"value": version["value"] + 1}}
    else:
        out["contentLength"] = piece["contentLength"] + 1
    return out
