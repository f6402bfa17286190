"""How the fake server behaves: :class:`FakeConfig`."""

from __future__ import annotations

from typing import Final

import attrs

from vccasync.fake._auth import DELETE_SCOPE, READ_SCOPE
from vccasync.fake._dataset import Order
from vccasync.fake._deletes import DeleteConfig
from vccasync.fake._faults import FaultConfig
from vccasync.fake._timeline import Timeline

__all__ = ["ORDERS", "FakeConfig"]

ORDERS: Final = ("start", "guid", "hour")
GATED: Final = frozenset({"search", "content"})
GATEABLE: Final = GATED | {"get"}


@attrs.frozen
class FakeConfig:
    """Behaviour of the fake server. ``rate_limit_window`` (seconds) is for fast tests.

    ``order`` is how each search window is paged: ``"start"`` (the API's order), ``"guid"``
    (by guid), or ``"hour"`` (by the hour of start, then guid, each page then sorted by start:
    pages look ordered, but a page boundary inside an hour goes back in time). ``hold_after``
    starts the gate holding after that many search and content answers (see
    :mod:`vccasync.fake._gate`); ``gated`` names the answers the gate counts and holds
    (``"search"``, ``"content"`` by default, or ``"get"``: get-one; the others pass
    freely). ``bind_tokens`` makes a continuation token valid only with the query it came
    from (same range, filters and limit), as an API may. ``content_etags=False`` sends
    content with a ``Last-Modified`` only (no ``ETag``), ``content_if_range=False`` ignores
    ``If-Range`` (a ranged answer whatever the version), as some servers and proxies do.
    """

    client_id: str = "demo-client"
    client_secret: str = "demo-secret"
    token_ttl: float = 3600.0
    page_latency: float = 0.0
    per_item_latency: float = 0.0
    rate_limit_per_minute: int | None = None
    rate_limit_retry_after: bool = True
    end_inclusive: bool = True
    faults: FaultConfig = attrs.field(factory=FaultConfig)
    token_faults: bool = False
    rate_limit_window: float = 60.0
    content_redirect_host: str | None = None
    content_chunk_latency: float = 0.0
    content_etags: bool = True
    content_if_range: bool = True
    order: Order = attrs.field(default="start", validator=attrs.validators.in_(ORDERS))
    hold_after: int | None = None
    gated: frozenset[str] = attrs.field(
        default=GATED, converter=frozenset, validator=attrs.validators.deep_iterable(
            attrs.validators.in_(GATEABLE)
        ),
    )  # fmt: skip
    bind_tokens: bool = False
    timeline: Timeline | None = None  # time-varying data (vccasync.fake._timeline)
    scopes: tuple[str, ...] = (READ_SCOPE, DELETE_SCOPE)  # what the client may be granted
    deletes: DeleteConfig = attrs.field(factory=DeleteConfig)
