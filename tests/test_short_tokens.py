"""Tokens shorter than the budget queue: 120 days and a bulk download through 2 s tokens.

The fake enforces the vendor's 160 requests a minute, the client runs at its default budget
(160 a minute) with its default eight windows, so a request waits ~3 s in the budget queue,
longer than a token lives; 10 % of the requests fail in every way the fake knows. The client
must take its token after the wait and deliver the exact set, with no AuthenticationError.

``python -m tests.test_short_tokens`` prints the wall time and request counts of both runs.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync import BulkProgress, VccClient, to_api
from vccasync._config import DEFAULT_RATE
from vccasync.fake import Dataset, DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate

from .conftest import api_shape, client_for
from .content_helpers import expected_files, tree

START = datetime(2025, 1, 1, tzinfo=UTC)
SPEC = DatasetSpec(seed=5, start=START, days=125, per_day=1, content_scale=0.001)
FROM, TO = START + timedelta(days=2, hours=7), START + timedelta(days=122, minutes=3)
TYPES = {"chatTranscript"}  # ~25 files: the run stays short at 160 requests a minute
FAKE = FakeConfig(
    token_ttl=2.0,
    faults=FaultConfig(rate=0.10, seed=4, stall_seconds=1.0, retry_after="0.3"),
    rate_limit_per_minute=int(DEFAULT_RATE),
)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


def client(fake: FakeVccServer) -> VccClient:
    """The default budget and concurrency; fast backoff, so faults cost little time."""
    return client_for(fake, requests_per_minute=DEFAULT_RATE, max_attempts=8, timeout=5.0)


async def search(dataset: Dataset) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The 120 days through the hostile fake: what came back, and figures of the run."""
    began = time.monotonic()
    async with FakeVccServer(dataset, FAKE) as fake, client(fake) as vcc:
        got = [to_api(it) async for it in vcc.interactions(FROM, TO)]
        figures = _figures(vcc, fake, began)
    return got, figures


async def bulk(dataset: Dataset, dest: Path) -> tuple[BulkProgress, dict[str, Any]]:
    """A bulk download of the same range (``TYPES`` only) through the hostile fake."""
    began = time.monotonic()
    async with FakeVccServer(dataset, FAKE) as fake, client(fake) as vcc:
        progress = await vcc.download_all(vcc.interactions(FROM, TO), dest, types=TYPES)
        figures = _figures(vcc, fake, began)
    return progress, figures


def _figures(vcc: VccClient, fake: FakeVccServer, began: float) -> dict[str, Any]:
    return {
        "seconds": round(time.monotonic() - began, 1),
        "requests": vcc.stats.requests,
        "retries": vcc.stats.retries,
        "tokens": vcc.session.tokens.refreshes,
        "faults": sum(fake.stats.faults.values()),
    }


@pytest.mark.slow
async def test_120_days_through_2s_tokens_at_the_default_budget(dataset: Dataset) -> None:
    got, figures = await search(dataset)
    want = [api_shape(i) for i in dataset.expected(FROM, TO)]
    assert len(want) > 100
    assert got == want  # exact, ordered, every field
    assert figures["tokens"] >= 3 and figures["faults"] >= 1  # tokens really ran out


@pytest.mark.slow
async def test_bulk_download_through_2s_tokens_at_the_default_budget(
    dataset: Dataset, tmp_path: Path
) -> None:
    progress, figures = await bulk(dataset, tmp_path)
    want = expected_files(dataset, FROM, TO, TYPES)
    assert len(want) > 20
    assert progress.files_failed == 0 and progress.failures == []
    assert tree(tmp_path) == want
    assert figures["tokens"] >= 3 and figures["faults"] >= 3


async def _main() -> None:
    dataset = generate(SPEC)
    _, figures = await search(dataset)
    print("search:", figures)
    with tempfile.TemporaryDirectory() as dest:
        progress, figures = await bulk(dataset, Path(dest))
    print("bulk:  ", figures)
    print("       ", progress.summary())


if __name__ == "__main__":
    asyncio.run(_main())
