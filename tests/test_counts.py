"""Counts in progress and summary lines: singular for one, plural otherwise."""

from __future__ import annotations

from vccasync._counts import count
from vccasync._http.session import SessionStats


def test_one_is_singular_and_the_rest_plural() -> None:
    assert count(1, "request") == "1 request"
    assert count(0, "request") == "0 requests"
    assert count(2, "request") == "2 requests"
    assert count(12_345, "interaction") == "12,345 interactions"
    assert count(1, "retry") == "1 retry"
    assert count(3, "retry") == "3 retries"
    assert count(2, "piece", "pieces of content") == "2 pieces of content"


def test_the_lines_say_one_request() -> None:
    from vccasync.cli._progress import request_counts

    stats = SessionStats()
    stats.requests, stats.retries, stats.rate_limited = 1, 1, 1
    assert request_counts(stats) == "1 request, 1 retry, 1 rate-limited"


def test_pass_and_download_summaries_say_one() -> None:
    from datetime import UTC, datetime

    from vccasync.content import BulkProgress
    from vccasync.sync import PassResult, Span

    moment = datetime(2025, 1, 1, tzinfo=UTC)
    result = PassResult(Span(moment, moment), 1, 0, 0, 0, 1, 0, 0.5)
    assert "; 1 request, 0.5s" in result.summary()
    progress = BulkProgress(interactions=1, files_found=1)
    assert progress.summary().startswith("1 interaction, 1 file (")
