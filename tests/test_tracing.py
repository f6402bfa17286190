"""OpenTelemetry spans: the tree of a search, a split, retries and 429 waits, downloads,
deletions, sync passes, aiohttp's spans under the request core's, and nothing imported
when not wanted. Each test has its own provider and in-memory exporter (no global state)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from vccasync import APIStatusError, DeleteOutcome, Page, VccClient
from vccasync._instants import format_instant
from vccasync.fake import Dataset, DatasetSpec, FakeVccServer, FaultConfig, generate
from vccasync.sync import SyncEngine

from .conftest import API, FAST, client_for, token_answer
from .test_download import interrupted

START = datetime(2025, 1, 1, tzinfo=UTC)
SEARCH = re.compile(re.escape(API) + r"/interactions\?")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture(scope="module")
def small() -> Dataset:
    # ten days, a few interactions a day: two windows (7 days, then 3), one page each
    return generate(DatasetSpec(seed=3, start=START, days=10, per_day=4, content_scale=0.01))


class Tree:
    """Finished spans by parent."""

    def __init__(self, spans: Sequence[ReadableSpan]) -> None:
        self.spans = sorted(spans, key=lambda s: s.start_time or 0)
        self.by_id = {s.context.span_id: s for s in self.spans if s.context is not None}

    def children(self, span: ReadableSpan | None, name: str | None = None) -> list[ReadableSpan]:
        parent = None if span is None or span.context is None else span.context.span_id
        return [
            s
            for s in self.spans
            if (s.parent.span_id if s.parent else None) == parent
            and (name is None or s.name == name)
        ]

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return self.by_id.get(span.parent.span_id) if span.parent else None

    def shape(self, span: ReadableSpan) -> tuple[str, list[Any]]:
        return (span.name, [self.shape(child) for child in self.children(span)])


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def prime_token(vcc: VccClient) -> None:
    """Take the read token before the search, so that its request is not in the tree."""
    await vcc.session.tokens.current(None)


async def test_a_small_search_is_a_search_of_windows_of_pages_of_requests(
    small: Dataset, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    end = START + timedelta(days=10) - timedelta(milliseconds=1)
    async with FakeVccServer(small) as fake, client_for(fake, tracer_provider=provider) as vcc:
        await prime_token(vcc)
        exporter.clear()
        pages = [p async for p in vcc.interactions(START, end, direction="inbound").pages()]
    tree = Tree(exporter.get_finished_spans())
    search = tree.one("vcc.search")
    assert tree.parent(search) is None
    page = ("vcc.page", [("vcc.request", [])])
    assert tree.shape(search) == ("vcc.search", [("vcc.window", [page])] * 2)
    assert attrs(search) == {
        "vcc.account": fake.client_id,
        "vcc.region": "emea",
        "vcc.search.start": format_instant(START),
        "vcc.search.end": format_instant(end),
        "vcc.search.limit": 1000,
        "vcc.search.windows_planned": 2,
        "vcc.search.resumed": False,
        "vcc.filter.direction": "inbound",
        "vcc.search.pages": 2,
        "vcc.search.items": sum(len(p.items) for p in pages),
        "vcc.search.windows": 2,
        "vcc.search.splits": 0,
        "vcc.search.complete": True,
    }
    windows = tree.children(search)
    assert sorted(attrs(w)["vcc.window"] for w in windows) == sorted(p.window.key for p in pages)
    for window in windows:
        key = attrs(window)["vcc.window"]
        [got] = [p for p in pages if p.window.key == key]
        assert attrs(window)["vcc.window.start"] == format_instant(got.window.start)
        assert attrs(window)["vcc.window.resumed"] is False
        assert attrs(window)["vcc.account"] == fake.client_id
        [page_span] = tree.children(window)
        assert attrs(page_span) | {"vcc.page.items": len(got.items)} == attrs(page_span)
        assert attrs(page_span)["vcc.window"] == key
        assert attrs(page_span)["vcc.page.split"] is False
        assert attrs(page_span)["vcc.page.last"] is True
        [request] = tree.children(page_span)
        assert attrs(request)["http.request.method"] == "GET"
        assert attrs(request)["url.path"] == "/interaction-content/interactions"
        assert attrs(request)["http.response.status_code"] == 200
        assert attrs(request)["server.address"] == "127.0.0.1"
        assert request.status.status_code is StatusCode.UNSET


async def test_a_split_window_hands_sub_windows_to_the_search(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    # one dense day in one window, pages of 50: the first page is full and splits the window
    dense = generate(DatasetSpec(seed=5, start=START, days=1, per_day=400))
    end = START + timedelta(hours=23)
    options = {"tracer_provider": provider, "concurrency": 4}
    async with FakeVccServer(dense) as fake, client_for(fake, **options) as vcc:
        await prime_token(vcc)
        exporter.clear()
        pages = [p async for p in vcc.interactions(START, end, limit=50).pages()]
    tree = Tree(exporter.get_finished_spans())
    search = tree.one("vcc.search")
    spawned = [sub for page in pages for sub in page.spawned]
    assert spawned, "the dense window was not split"
    windows = tree.named("vcc.window")
    # every window, planned or spawned, is a child of the search, never of the window it split
    assert all(tree.parent(w) is search for w in windows)
    assert sorted(attrs(w)["vcc.window"] for w in windows) == sorted(
        [pages[0].window.key, *(w.key for w in spawned)]
    )
    # the planned window ends with the page that split it
    [planned] = [w for w in windows if attrs(w)["vcc.window"] == pages[0].window.key]
    split_page = tree.children(planned, "vcc.page")[-1]
    assert attrs(split_page)["vcc.page.split"] is True
    assert attrs(split_page)["vcc.page.spawned"] == len(spawned) > 1
    assert attrs(split_page)["vcc.page.last"] is True
    # each page's span is under its window's, with the page's items and split
    page_spans = tree.named("vcc.page")
    assert len(page_spans) == len(pages)
    for span in page_spans:
        parent = tree.parent(span)
        assert parent is not None and parent.name == "vcc.window"
        assert attrs(parent)["vcc.window"] == attrs(span)["vcc.window"]
        assert [r.name for r in tree.children(span)] == ["vcc.request"]
    want = sorted((p.window.key, len(p.items), bool(p.spawned)) for p in pages)
    got = sorted(
        (a["vcc.window"], a["vcc.page.items"], a["vcc.page.split"]) for a in map(attrs, page_spans)
    )
    assert got == want
    assert attrs(search)["vcc.search.splits"] == sum(bool(p.spawned) for p in pages)
    assert attrs(search)["vcc.search.windows"] == len(windows)


def page_body(guid: str = "g1") -> dict[str, Any]:
    item = {"guid": guid, "start": "2025-01-01T10:00:00Z", "handlingAgents": [], "content": []}
    return {"items": [item], "meta": {"count": 1}}


async def one_page_search(provider: TracerProvider) -> list[Page]:
    async with VccClient(
        client_id="id-1", client_secret="s", tracer_provider=provider, **FAST
    ) as vcc:
        await prime_token(vcc)
        return [p async for p in vcc.interactions(START, START + timedelta(days=1)).pages()]


async def test_a_5xx_is_an_event_with_its_wait_and_a_failed_request(
    mocked: aioresponses, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    token_answer(mocked)
    mocked.get(SEARCH, status=503, payload={"message": "busy"})
    mocked.get(SEARCH, payload=page_body())
    [page] = await one_page_search(provider)
    assert [i.guid for i in page.items] == ["g1"]
    tree = Tree(exporter.get_finished_spans())
    page_span = tree.one("vcc.page")
    first, second = tree.children(page_span, "vcc.request")
    assert attrs(first)["http.response.status_code"] == 503
    assert first.status.status_code is StatusCode.ERROR
    assert attrs(second)["http.response.status_code"] == 200
    [event] = page_span.events
    assert event.name == "vcc.retry"
    event_attrs = dict(event.attributes or {})
    assert event_attrs["vcc.attempt"] == 1
    assert event_attrs["error.type"] == "APIStatusError"
    assert "HTTP 503" in str(event_attrs["vcc.error"])
    assert 0 <= float(event_attrs["vcc.wait_s"]) <= FAST["backoff_max"]
    assert page_span.status.status_code is StatusCode.UNSET  # the page itself succeeded


async def test_a_429_is_an_event_with_the_retry_after_wait(
    mocked: aioresponses, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    token_answer(mocked)
    mocked.get(SEARCH, status=429, headers={"Retry-After": "0.05"}, payload={"message": "slow"})
    mocked.get(SEARCH, payload=page_body())
    await one_page_search(provider)
    tree = Tree(exporter.get_finished_spans())
    page_span = tree.one("vcc.page")
    [event] = page_span.events
    assert event.name == "vcc.rate_limited"
    assert dict(event.attributes or {}) == {
        "vcc.attempt": 1,
        "vcc.wait_s": 0.05,
        "error.type": "RateLimitedError",
        "vcc.error": f"HTTP 429 from {API}/interactions: slow",
    }
    statuses = [attrs(r)["http.response.status_code"] for r in tree.children(page_span)]
    assert statuses == [429, 200]


async def test_downloads_and_deletions_have_their_spans(
    small: Dataset, provider: TracerProvider, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    item = next(i for i in small.visible() if i["content"])
    piece = item["content"][0]
    fast = {"tracer_provider": provider, "deletes_per_minute": 6000}
    async with FakeVccServer(small) as fake, client_for(fake, **fast) as vcc:
        await prime_token(vcc)
        exporter.clear()
        key, length = piece["contentKey"], piece["contentLength"]
        result = await vcc.download(item["guid"], key, tmp_path / "a", expected_length=length)
        deleted = await vcc.delete_content(item["guid"], piece["contentKey"])
        again = await vcc.delete_content(item["guid"], piece["contentKey"])
    tree = Tree(exporter.get_finished_spans())
    download = tree.one("vcc.download")
    assert attrs(download) == {
        "vcc.account": fake.client_id,
        "vcc.region": "emea",
        "vcc.guid": item["guid"],
        "vcc.content_key": piece["contentKey"],
        "vcc.download.bytes": result.size,
        "vcc.download.resumed": False,
        "vcc.download.resumed_from": 0,
        "vcc.download.attempts": 1,
    }
    assert result.size == piece["contentLength"]
    assert [r.name for r in tree.children(download)] == ["vcc.request"]
    assert (deleted, again) == (DeleteOutcome.DELETED, DeleteOutcome.ALREADY_GONE)
    first, second = tree.named("vcc.delete")
    assert attrs(first)["vcc.delete.outcome"] == "deleted"
    assert attrs(second)["vcc.delete.outcome"] == "already-gone"
    assert attrs(first)["vcc.content_key"] == piece["contentKey"]
    # the delete scope's token is taken under the first deletion; each deletion sends once
    assert [attrs(r)["http.request.method"] for r in tree.children(first)] == ["POST", "DELETE"]
    assert [attrs(r)["http.response.status_code"] for r in tree.children(second)] == [404]


async def test_a_resumed_download_says_so(
    small: Dataset, provider: TracerProvider, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    guid, piece = max(
        ((i["guid"], c) for i in small.visible() for c in i["content"]),
        key=lambda found: int(found[1]["contentLength"]),
    )
    length, dest = piece["contentLength"], tmp_path / "b"
    interrupted(dest, guid, piece, length // 2)  # a .part of the first half, as a crash leaves
    async with FakeVccServer(small) as fake, client_for(fake, tracer_provider=provider) as vcc:
        result = await vcc.download(guid, piece["contentKey"], dest, expected_length=length)
    download = Tree(exporter.get_finished_spans()).one("vcc.download")
    assert result.resumed_from == length // 2 > 0
    assert attrs(download)["vcc.download.resumed"] is True
    assert attrs(download)["vcc.download.resumed_from"] == length // 2
    assert attrs(download)["vcc.download.bytes"] == length


async def test_a_sync_pass_holds_its_search(
    small: Dataset, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    since = START + timedelta(days=8)
    async with FakeVccServer(small) as fake, client_for(fake, tracer_provider=provider) as vcc:
        changes = [c async for c in vcc.changes(since, lookback="1h", once=True)]
    tree = Tree(exporter.get_finished_spans())
    sync_pass = tree.one("vcc.sync.pass")
    assert tree.parent(sync_pass) is None
    assert tree.parent(tree.one("vcc.search")) is sync_pass
    got = attrs(sync_pass)
    assert got["vcc.sync.complete"] is True
    assert got["vcc.sync.new"] == len(changes) > 0
    assert got["vcc.sync.start"] == format_instant(since)
    assert got["vcc.account"] == fake.client_id


async def test_a_failed_pass_after_a_complete_one_is_not_complete(
    small: Dataset, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with FakeVccServer(small) as fake, client_for(fake, tracer_provider=provider) as vcc:
        engine = SyncEngine(vcc, since=START + timedelta(days=8), lookback="1h")
        first = [c async for c in engine.run_pass()]
        fake.inject_faults(FaultConfig(rate=1.0, kinds=("500",), requests={"search"}))
        with pytest.raises(APIStatusError):
            [c async for c in engine.run_pass()]
    complete, failed = Tree(exporter.get_finished_spans()).named("vcc.sync.pass")
    assert attrs(complete)["vcc.sync.complete"] is True
    assert attrs(complete)["vcc.sync.new"] == len(first) > 0
    assert attrs(failed)["vcc.sync.complete"] is False
    assert "vcc.sync.new" not in attrs(failed)  # not the counts of the pass before
    assert failed.status.status_code is StatusCode.ERROR
    [error] = [e for e in failed.events if e.name == "exception"]
    assert dict(error.attributes or {})["exception.type"].endswith("APIStatusError")


async def test_aiohttp_spans_are_children_of_the_request_core_spans(
    small: Dataset, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    aiohttp_client = pytest.importorskip("opentelemetry.instrumentation.aiohttp_client")
    instrumentor = aiohttp_client.AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        async with FakeVccServer(small) as fake, client_for(fake, tracer_provider=provider) as vcc:
            [_ async for _ in vcc.interactions(START, START + timedelta(days=9))]
    finally:
        instrumentor.uninstrument()
    tree = Tree(exporter.get_finished_spans())
    requests = tree.named("vcc.request")
    clients = [s for s in tree.spans if s.kind is SpanKind.CLIENT]
    assert len(requests) == 3  # the token, then a page of each of two windows
    assert len(clients) == len(requests)
    for request in requests:
        [client] = tree.children(request)
        assert client.kind is SpanKind.CLIENT
        assert client.name == attrs(request)["http.request.method"]


NO_OTEL = """
import asyncio, sys
from datetime import datetime, timedelta, UTC
BLOCK = {block}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if BLOCK and name.split(".")[0] == "opentelemetry":
            raise ImportError("blocked: " + name)
        return None

sys.meta_path.insert(0, Blocker())
import vccasync
from vccasync import VccClient
from vccasync.fake import DatasetSpec, FakeVccServer, generate

async def main():
    data = generate(DatasetSpec(seed=1, days=3, per_day=20))
    async with FakeVccServer(data) as fake:
        async with VccClient(client_id=fake.client_id, client_secret=fake.client_secret,
                             api_url=fake.api_url, auth_url=fake.auth_url) as vcc:
            start, end = data.spec.start, data.spec.start + timedelta(days=3)
            got = [i.guid async for i in vcc.interactions(start, end)]
            return got == [i["guid"] for i in data.expected(start, end)] and len(got) > 0

print(asyncio.run(main()), sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


@pytest.mark.parametrize("block", [True, False], ids=["not-installed", "installed-unused"])
def test_nothing_of_opentelemetry_is_imported_when_not_wanted(block: bool) -> None:
    script = textwrap.dedent(NO_OTEL).format(block=block)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "[]"]  # the search was exact, imported nothing


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), **env}
    return subprocess.run(
        [sys.executable, "-m", "vccasync.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def test_the_cli_sends_spans_to_the_console_exporter_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "day.jsonl"
    args = ("interactions", "--demo", "--start", "2025-01-01", "--end", "2025-01-01T06:00Z")
    run = cli(*args, "--output", str(out), "--quiet", OTEL_TRACES_EXPORTER="console")
    assert run.returncode == 0, run.stderr
    assert '"name": "vcc.search"' in run.stderr and '"name": "vcc.page"' in run.stderr
    assert '"name": "GET"' in run.stderr  # aiohttp's span, the instrumentation being installed
    assert run.stdout == "" and out.read_text().count("\n") > 0
    bad = cli(*args, "--output", str(out), OTEL_TRACES_EXPORTER="nosuch")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "vccasync: error: OTEL_TRACES_EXPORTER names 'nosuch', which is not installed"
        " (console, or install its exporter: opentelemetry-exporter-otlp for otlp)"
    ]


async def test_the_trace_picture_draws_a_row_per_span_and_a_mark_per_event(
    mocked: aioresponses, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from xml.etree import ElementTree

    from benchmarks.trace import in_tree_order, render

    token_answer(mocked)
    mocked.get(SEARCH, status=429, headers={"Retry-After": "0"}, payload={"message": "slow"})
    mocked.get(SEARCH, payload=page_body())
    await one_page_search(provider)
    spans = [s for s in exporter.get_finished_spans() if s.parent]  # not the token's request
    spans.insert(0, Tree(exporter.get_finished_spans()).one("vcc.search"))
    order = [(depth, span.name) for depth, span in in_tree_order(spans)]
    assert order == [
        (0, "vcc.search"),
        (1, "vcc.window"),
        (2, "vcc.page"),
        (3, "vcc.request"),
        (3, "vcc.request"),
    ]
    svg = ElementTree.fromstring(render(spans, "a <search> & its requests"))
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in svg.iter(f"{ns}text")]
    assert "a <search> & its requests" in labels
    assert "page: 1 items" in labels and "GET interactions 429" in labels
    marks = [p for p in svg.iter(f"{ns}path") if p.find(f"{ns}title") is not None]
    assert [m.find(f"{ns}title").text for m in marks] == ["vcc.rate_limited: wait 0 s"]  # type: ignore[union-attr]
