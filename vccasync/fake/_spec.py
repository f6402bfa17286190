"""What a fake dataset holds: :class:`DatasetSpec` (equal specs, identical datasets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

__all__ = ["DatasetSpec"]


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
    busy_days: int = attrs.field(default=1, validator=attrs.validators.ge(1))  # from busy_day on
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
