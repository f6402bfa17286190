"""Prometheus metrics of a sync: one registry per engine, served on loopback."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from vccasync._errors import InvalidRequestError
from vccasync.sync import PassResult, Span
from vccasync.sync._metrics import SyncMetrics, serve_metrics

T = datetime(2026, 11, 20, 12, tzinfo=UTC)
RESULT = PassResult(
    span=Span(T - timedelta(hours=24), T),
    new=3,
    changed=2,
    removed=1,
    unchanged=40,
    requests=5,
    rate_limited=1,
    seconds=0.5,
)


def sample(metrics: SyncMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_pass_is_counted_in_its_own_registry() -> None:
    one, other = SyncMetrics(now=lambda: T + timedelta(seconds=30)), SyncMetrics()
    one.pass_done(RESULT, T + timedelta(seconds=90))
    one.pass_done(RESULT, T + timedelta(seconds=30))
    one.pass_stopped(requests=2, rate_limited=0)
    assert sample(one, "vccasync_sync_passes_total", outcome="complete") == 2
    assert sample(one, "vccasync_sync_passes_total", outcome="incomplete") == 1
    assert sample(one, "vccasync_sync_interactions_total", kind="new") == 6
    assert sample(one, "vccasync_sync_interactions_total", kind="removed") == 2
    assert sample(one, "vccasync_sync_requests_total") == 12
    assert sample(one, "vccasync_sync_rate_limited_total") == 2
    assert sample(one, "vccasync_sync_seconds_behind") == 30
    assert sample(other, "vccasync_sync_passes_total", outcome="complete") == 0


def test_content_failures_are_counted_and_missing_pieces_shown() -> None:
    metrics = SyncMetrics()
    assert sample(metrics, "vccasync_sync_content_failures_total") == 0
    metrics.content_settled(failed=3, missing=2)
    metrics.content_settled(failed=1, missing=0)  # the next pass fetched them but one retry
    assert sample(metrics, "vccasync_sync_content_failures_total") == 4
    assert sample(metrics, "vccasync_sync_content_missing_pieces") == 0


def test_the_exporter_serves_on_loopback() -> None:
    metrics = SyncMetrics(now=lambda: T)
    metrics.pass_done(RESULT, T)
    server = serve_metrics(metrics, 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as r:
            body = r.read()
    finally:
        server.close()
    assert b'vccasync_sync_interactions_total{kind="changed"} 2.0' in body
    assert body == generate_latest(metrics.registry)


@pytest.mark.parametrize(("port", "host"), [(-1, "127.0.0.1"), (70000, "::1"), (0, "0.0.0.0")])
def test_bad_exporter_settings(port: int, host: str) -> None:
    with pytest.raises(InvalidRequestError):
        serve_metrics(SyncMetrics(), port, host)


def test_the_content_queue_depth_and_oldest_age_are_gauges() -> None:
    from vccasync.sync._queue import QueueStatus

    now = [T]
    metrics = SyncMetrics(now=lambda: now[0])
    assert sample(metrics, "vccasync_sync_content_queue_oldest_seconds") == 0
    metrics.queue_seen(QueueStatus(12, 3, T - timedelta(minutes=5), None))
    assert sample(metrics, "vccasync_sync_content_queue_depth") == 12
    assert sample(metrics, "vccasync_sync_content_queue_failed") == 3
    assert sample(metrics, "vccasync_sync_content_queue_oldest_seconds") == 300
    now[0] += timedelta(minutes=1)  # computed when scraped: it grows while nothing drains
    assert sample(metrics, "vccasync_sync_content_queue_oldest_seconds") == 360
    metrics.queue_seen(QueueStatus(0, 0, None, None))
    assert sample(metrics, "vccasync_sync_content_queue_oldest_seconds") == 0
