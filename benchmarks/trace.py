"""A backfill's trace as a picture: ``python -m benchmarks.trace [--out docs/img/trace.svg]``.

Runs a small backfill (nine days, one dense, pages of 100) against the project's fake API on
127.0.0.1, with a 0.1 s page latency, a budget of 600 requests a minute and seeded faults
(5xx answers and 429s with ``Retry-After``), through a ``VccClient`` given an OpenTelemetry
SDK provider with an in-memory exporter; then draws its spans as a waterfall, one row a span
in tree order, events (retries, 429 waits) as diamonds, failed requests in red. ``--aiohttp``
adds aiohttp's own client spans (opentelemetry-instrumentation-aiohttp-client) under the
request core's. Needs ``pip install -e ".[otel]"`` (or ``.[dev]``); timings vary run to run.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from vccasync import VccClient
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate

START = datetime(2025, 1, 6, tzinfo=UTC)
SPEC = DatasetSpec(seed=4, start=START, days=9, per_day=60, busy_day=3, busy_factor=8.0)
FAULTS = FaultConfig(rate=0.12, kinds=("500", "429"), seed=5, retry_after="0.3")
CONFIG = FakeConfig(page_latency=0.1, faults=FAULTS)
OUT = Path("docs/img/trace.svg")

ROW, LABEL, CHART, PAD = 17, 360, 620, 10
COLOURS = {
    "vcc.search": "#4c72b0",
    "vcc.window": "#55a868",
    "vcc.page": "#8172b2",
    "vcc.request": "#ccb974",
}
OTHER = "#999999"
FAILED = "#c44e52"
EVENTS = {"vcc.retry": "#ffd92f", "vcc.rate_limited": "#dd8452"}


async def backfill(provider: TracerProvider, *, with_aiohttp: bool) -> None:
    """The traced run: every interaction of the nine days, as ``vccasync interactions`` runs."""
    instrumentor: Any = None
    if with_aiohttp:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        instrumentor = AioHttpClientInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
    try:
        async with FakeVccServer(generate(SPEC), CONFIG) as fake:
            client = VccClient(
                client_id=fake.client_id,
                client_secret=fake.client_secret,
                api_url=fake.api_url,
                auth_url=fake.auth_url,
                requests_per_minute=600,
                backoff_initial=0.05,
                backoff_max=0.2,
                tracer_provider=provider,
            )
            async with client as vcc:
                end = START + timedelta(days=SPEC.days) - timedelta(milliseconds=1)
                async for _ in vcc.interactions(START, end, limit=100).pages():
                    pass
    finally:
        if instrumentor is not None:
            instrumentor.uninstrument()


def in_tree_order(spans: Sequence[ReadableSpan]) -> list[tuple[int, ReadableSpan]]:
    """``(depth, span)`` depth first, children by start time; roots first by start."""
    known = {s.context.span_id for s in spans if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent else None
        children.setdefault(parent if parent in known else None, []).append(span)
    out: list[tuple[int, ReadableSpan]] = []

    def visit(parent: int | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            out.append((depth, span))
            if span.context is not None:
                visit(span.context.span_id, depth + 1)

    visit(None, 0)
    return out


def label(span: ReadableSpan) -> str:
    """The span's name and what matters of it, short."""
    a = dict(span.attributes or {})
    if span.name == "vcc.search":
        return f"search {str(a['vcc.search.start'])[:10]} to {str(a['vcc.search.end'])[:10]}"
    if span.name == "vcc.window":
        start, end = str(a["vcc.window.start"]), str(a["vcc.window.end"])
        return f"window {start[5:16]} to {end[5:16]}"
    if span.name == "vcc.page":
        split = f", split into {a['vcc.page.spawned']}" if a.get("vcc.page.split") else ""
        return f"page: {a.get('vcc.page.items', '?')} items{split}"
    if span.name == "vcc.request":
        path = str(a.get("url.path", "")).rsplit("/", 1)[-1]
        return f"{a.get('http.request.method')} {path} {a.get('http.response.status_code', '')}"
    return span.name


def render(spans: Sequence[ReadableSpan], title: str) -> str:
    """The waterfall of ``spans`` as an SVG document (no dependency: text)."""
    rows = in_tree_order(spans)
    t0 = min(s.start_time or 0 for s in spans)
    t1 = max(s.end_time or 0 for s in spans)
    scale = CHART / max(1, t1 - t0)
    top = 44
    height = top + ROW * len(rows) + 40
    width = LABEL + CHART + 2 * PAD

    def x(ns: int) -> float:
        return LABEL + PAD + (ns - t0) * scale

    seconds = (t1 - t0) / 1e9
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{PAD}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    step = _tick(seconds)
    tick = 0.0
    while tick <= seconds + 1e-9:
        tx = LABEL + PAD + tick * 1e9 * scale
        out.append(
            f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height - 36}"'
            ' stroke="#e4e4e4"/>'
            f'<text x="{tx:.1f}" y="{top - 10}" text-anchor="middle" fill="#666">{tick:g} s</text>'
        )
        tick = round(tick + step, 6)
    for row, (depth, span) in enumerate(rows):
        y = top + row * ROW
        start, end = span.start_time or t0, span.end_time or t1
        failed = span.status.status_code is StatusCode.ERROR
        colour = FAILED if failed else COLOURS.get(span.name, OTHER)
        ms = (end - start) / 1e6
        text = escape(label(span))
        out.append(
            f'<text x="{PAD + depth * 12}" y="{y + 12}">{text}</text>'
            f'<rect x="{x(start):.1f}" y="{y + 3}" width="{max(2.0, (end - start) * scale):.1f}"'
            f' height="{ROW - 6}" fill="{colour}" rx="2">'
            f"<title>{escape(span.name)}: {ms:.0f} ms</title></rect>"
        )
        for event in span.events:  # a diamond, and a line as long as the wait
            ex, colour = x(event.timestamp), EVENTS.get(event.name, OTHER)
            wait = float(dict(event.attributes or {}).get("vcc.wait_s", 0.0))
            tip = escape(f"{event.name}: wait {wait:g} s")
            out.append(
                f'<line x1="{ex:.1f}" y1="{y + 8}" x2="{ex + wait * 1e9 * scale:.1f}" y2="{y + 8}"'
                f' stroke="{colour}" stroke-width="3"/>'
                f'<path d="M{ex:.1f},{y + 1} l5,7 l-5,7 l-5,-7 z" fill="{colour}"'
                f' stroke="black" stroke-width="0.5"><title>{tip}</title></path>'
            )
    legend = [(n.removeprefix("vcc."), c) for n, c in COLOURS.items()] + [("failed", FAILED)]
    lx = PAD
    for name, colour in legend:
        ly = height - 20
        out.append(
            f'<rect x="{lx}" y="{ly - 9}" width="12" height="10" fill="{colour}" rx="2"/>'
            f'<text x="{lx + 16}" y="{ly}">{name}</text>'
        )
        lx += 30 + 7 * len(name)
    for name, colour in (("retry, its backoff", EVENTS["vcc.retry"]),
                         ("429, its wait", EVENTS["vcc.rate_limited"])):  # fmt: skip
        out.append(
            f'<path d="M{lx + 5},{height - 29} l5,7 l-5,7 l-5,-7 z" fill="{colour}"'
            f' stroke="black" stroke-width="0.5"/>'
            f'<text x="{lx + 16}" y="{height - 20}">{name}</text>'
        )
        lx += 30 + 7 * len(name)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _tick(seconds: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60):
        if seconds / step <= 12:
            return step
    return 120.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trace", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help=f"the SVG file (default {OUT})")
    parser.add_argument("--aiohttp", action="store_true", help="with aiohttp's client spans")
    args = parser.parse_args(argv)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    asyncio.run(backfill(provider, with_aiohttp=args.aiohttp))
    spans = exporter.get_finished_spans()
    title = f"vccasync: a nine-day backfill against the fake API, {len(spans)} spans"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(spans, title), encoding="utf-8")
    print(f"{args.out}: {len(spans)} spans")


if __name__ == "__main__":
    main()
