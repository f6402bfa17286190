"""Prometheus metrics of a sync (``pip install "vccasync[metrics]"``: prometheus-client).

One :class:`SyncMetrics` per engine, each with its own registry (never the global one), so
that two engines or two tests never share counters. It is a
:class:`~vccasync.sync._engine.PassObserver`: pass it as the engine's ``observer``.
:func:`serve_metrics` exposes a registry over HTTP on a loopback port.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from .._errors import InvalidRequestError
from ._engine import PassResult
from ._queue import QueueStatus

__all__ = ["MetricsServer", "SyncMetrics", "serve_metrics"]

LOOPBACK: Final = ("127.0.0.1", "::1", "localhost")


class SyncMetrics:
    """Counters and gauges of one engine's passes, in ``self.registry``.

    ``vccasync_sync_passes_total{outcome="complete"|"incomplete"}``,
    ``vccasync_sync_interactions_total{kind="new"|"changed"|"removed"|"unchanged"}``,
    ``vccasync_sync_requests_total``, ``vccasync_sync_rate_limited_total`` (429 answers),
    ``vccasync_sync_seconds_behind`` (now minus the instant the state is complete up to,
    computed when scraped: it keeps growing while passes fail; 0 before any complete pass
    unless :meth:`complete_up_to` was told where a stored state stands),
    ``vccasync_sync_last_pass_seconds``; with content downloads,
    ``vccasync_sync_content_failures_total`` (failed downloads of pieces) and
    ``vccasync_sync_content_missing_pieces`` (failed pieces still queued);
    the durable content queue: ``vccasync_sync_content_queue_depth`` (pieces queued),
    ``vccasync_sync_content_queue_failed`` (of which failed at least once) and
    ``vccasync_sync_content_queue_oldest_seconds`` (age of the oldest, computed when scraped).
    ``now`` is the clock (default the UTC wall clock).
    """

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._up_to: datetime | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.passes = Counter(
            "vccasync_sync_passes", "Sync passes by outcome", ["outcome"], registry=reg
        )
        self.interactions = Counter(
            "vccasync_sync_interactions",
            "Interactions seen by sync passes, by change kind",
            ["kind"],
            registry=reg,
        )
        self.requests = Counter(
            "vccasync_sync_requests", "API requests of sync passes", registry=reg
        )
        self.rate_limited = Counter(
            "vccasync_sync_rate_limited", "429 answers during sync passes", registry=reg
        )
        self.behind = Gauge(
            "vccasync_sync_seconds_behind",
            "Seconds between now and the instant the sync is complete up to",
            registry=reg,
        )
        self.behind.set_function(self._seconds_behind)
        self.last_pass = Gauge(
            "vccasync_sync_last_pass_seconds", "Duration of the last complete pass", registry=reg
        )
        self.content_failures = Counter(
            "vccasync_sync_content_failures", "Failed downloads of pieces", registry=reg
        )
        self.content_missing = Gauge(
            "vccasync_sync_content_missing_pieces",
            "Failed pieces still in the content queue (retried with backoff)",
            registry=reg,
        )
        self._oldest: datetime | None = None
        self.queue_depth = Gauge(
            "vccasync_sync_content_queue_depth", "Pieces in the content queue", registry=reg
        )
        self.queue_failed = Gauge(
            "vccasync_sync_content_queue_failed",
            "Pieces in the content queue that failed at least once",
            registry=reg,
        )
        self.queue_oldest = Gauge(
            "vccasync_sync_content_queue_oldest_seconds",
            "Age of the oldest piece in the content queue (0: empty)",
            registry=reg,
        )
        self.queue_oldest.set_function(self._oldest_age)
        for outcome in ("complete", "incomplete"):
            self.passes.labels(outcome)
        for kind in ("new", "changed", "removed", "unchanged"):
            self.interactions.labels(kind)

    def pass_done(self, result: PassResult, now: datetime) -> None:
        """Count a complete pass."""
        self.passes.labels("complete").inc()
        for kind in ("new", "changed", "removed", "unchanged"):
            self.interactions.labels(kind).inc(getattr(result, kind))
        self.requests.inc(result.requests)
        self.rate_limited.inc(result.rate_limited)
        self._up_to = result.complete_up_to
        self.last_pass.set(result.seconds)

    def complete_up_to(self, instant: datetime | None) -> None:
        """Where the state stands before any pass of this run (its stored coverage's end)."""
        self._up_to = instant

    def _seconds_behind(self) -> float:
        up_to = self._up_to
        return 0.0 if up_to is None else max(0.0, (self._now() - up_to).total_seconds())

    def content_settled(self, failed: int, missing: int) -> None:
        """Count a pass's failed downloads; ``missing`` pieces are left to retry."""
        self.content_failures.inc(failed)
        self.content_missing.set(missing)

    def queue_seen(self, status: QueueStatus) -> None:
        """The content queue as it stands now."""
        self.queue_depth.set(status.depth)
        self.queue_failed.set(status.failed)
        self.content_missing.set(status.failed)
        self._oldest = status.oldest

    def _oldest_age(self) -> float:
        oldest = self._oldest
        return 0.0 if oldest is None else max(0.0, (self._now() - oldest).total_seconds())

    def pass_stopped(self, requests: int, rate_limited: int) -> None:
        """Count a pass that stopped before its end (failure, cancellation)."""
        self.passes.labels("incomplete").inc()
        self.requests.inc(requests)
        self.rate_limited.inc(rate_limited)


class MetricsServer:
    """A running exporter on ``port``; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self.port: int = server.server_port
        self._server, self._thread = server, thread

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(metrics: SyncMetrics, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``metrics`` at ``http://host:port/metrics`` from a daemon thread (``port=0``
    picks a free port: see ``.port``). Only loopback hosts are accepted."""
    if host not in LOOPBACK:
        raise InvalidRequestError(f"metrics are served on loopback only, not {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidRequestError(f"metrics port must be from 0 to 65535, got {port!r}")
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise InvalidRequestError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
    return MetricsServer(server, thread)
