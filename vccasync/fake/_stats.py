"""What the fake server did: request records and counters."""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import attrs

from vccasync.fake._deletes import DeleteStats

__all__ = ["FakeStats", "RequestRecord"]


class RequestRecord(NamedTuple):
    """One API request as the server saw it (status 0: dropped without an answer)."""

    time: float
    path: str
    query: dict[str, str]
    status: int


@attrs.define
class FakeStats:
    """Counters of what the server did; mutable, reset with :meth:`reset`."""

    requests: int = 0
    token_requests: int = 0
    search_requests: int = 0
    get_requests: int = 0
    content_requests: int = 0
    storage_requests: int = 0
    delete_requests: int = 0
    content_bytes_sent: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    rate_limited: int = 0
    faults: Counter[str] = attrs.field(factory=Counter)
    statuses: Counter[int] = attrs.field(factory=Counter)
    records: list[RequestRecord] = attrs.field(factory=list)
    storage_headers: list[dict[str, str]] = attrs.field(factory=list)
    deletes: DeleteStats = attrs.field(factory=DeleteStats)

    def reset(self) -> None:
        """Zero every counter (``in_flight`` keeps counting requests still running)."""
        fresh = FakeStats(in_flight=self.in_flight, max_in_flight=self.in_flight)
        for field in attrs.fields(FakeStats):
            if field.name != "deletes":  # the delete endpoints keep theirs, zeroed in place
                setattr(self, field.name, getattr(fresh, field.name))
        self.deletes.reset()
