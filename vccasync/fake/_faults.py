"""Deterministic choice of injected faults, one independent draw per API request."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import Final

import attrs

ALL_KINDS: Final[tuple[str, ...]] = (
    "500",  # JSON {"message"} with status 500 or 503
    "502-html",  # gateway HTML page with status 502 or 504
    "drop",  # connection closed without any response
    "truncate",  # 200 with the full Content-Length but only part of the body
    "stall",  # answer normally after stall_seconds
    "429",  # Retry-After: integer seconds, fractional seconds or an HTTP date, in turn
    "429-bare",  # 429 without Retry-After
    "bad-json",  # 200 whose body is an HTML page, not JSON
)

_HTML_PAGE: Final = (
    "<!DOCTYPE html><html><head><title>{title}</title></head>"
    "<body><h1>{title}</h1><p>The server could not complete your request.</p></body></html>"
)


def _as_tuple(kinds: Iterable[str]) -> tuple[str, ...]:
    return tuple(kinds)


def _known_kinds(_: object, __: object, kinds: tuple[str, ...]) -> None:
    unknown = set(kinds) - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds: {sorted(unknown)}")


REQUESTS: Final = frozenset({"search", "get", "content", "delete"})


def _known_requests(_: object, __: object, requests: frozenset[str] | None) -> None:
    if requests is not None and not requests <= REQUESTS:
        raise ValueError(f"unknown requests: {sorted(requests - REQUESTS)}")


@attrs.frozen
class FaultConfig:
    """How often requests fail and how. ``rate`` is the probability per API request;
    ``requests`` names the requests that may fail (of ``REQUESTS``; None: all)."""

    rate: float = attrs.field(
        default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    kinds: tuple[str, ...] = attrs.field(
        default=ALL_KINDS, converter=_as_tuple, validator=_known_kinds
    )
    seed: int = 0
    stall_seconds: float = 5.0
    retry_after: str = "1"
    requests: frozenset[str] | None = attrs.field(
        default=None, converter=attrs.converters.optional(frozenset), validator=_known_requests
    )


@attrs.frozen
class Fault:
    """One decided fault; ``status``, ``headers`` and ``body`` are for the kinds that answer."""

    kind: str
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes = b""


class FaultInjector:
    """Draws faults from ``random.Random(config.seed)``: same request order, same faults."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._retry_turn = 0

    def choose(self, request: str | None = None) -> Fault | None:
        """The fault for the next request (a ``request`` of ``REQUESTS``, None: any), or None
        to answer it normally."""
        cfg, rng = self.config, self._rng
        if cfg.requests is not None and request not in cfg.requests:
            return None
        if not cfg.kinds or rng.random() >= cfg.rate:
            return None
        kind = cfg.kinds[rng.randrange(len(cfg.kinds))]
        if kind == "500":
            status = rng.choice((500, 503))
            body = b'{"message": "An unexpected error occurred (injected fault)."}'
            return Fault(kind, status, {"Content-Type": "application/json"}, body)
        if kind == "502-html":
            status = rng.choice((502, 504))
            title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
            page = _HTML_PAGE.format(title=title).encode()
            return Fault(kind, status, {"Content-Type": "text/html"}, page)
        if kind in ("429", "429-bare"):
            body = b'{"message": "Too many requests (injected fault)."}'
            headers = {"Content-Type": "application/json"}
            if kind == "429":
                headers["Retry-After"] = self._retry_after()
            return Fault(kind, 429, headers, body)
        if kind == "bad-json":
            media = rng.choice(("text/html", "application/json; charset=utf-8"))
            page = _HTML_PAGE.format(title="Please sign in").encode()
            return Fault(kind, 200, {"Content-Type": media}, page)
        return Fault(kind)  # drop, truncate, stall: handled around the normal answer

    def _retry_after(self) -> str:
        """Integer seconds, fractional seconds and an HTTP date, in turn."""
        turn, self._retry_turn = self._retry_turn, self._retry_turn + 1
        if turn % 3 == 0:
            return self.config.retry_after
        if turn % 3 == 1:
            return "0.3"
        return formatdate(time.time() + 1, usegmt=True)
