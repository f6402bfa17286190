"""``python -m benchmarks``: vccasync against the rate-limit ideal, the simple way, CPU, memory.

Each timed run starts the project's fake API in its own process (a page costs
``--page-latency`` seconds plus ``--item-latency`` per item; the fake enforces the same
requests-per-minute limit as the client is given) and runs the client in another process, so
the client's peak RSS is its own. The ideal is ``max(windows, ceil(items / 1000))`` requests
at the allowed rate plus one page's latency. The floor is the fewest requests any client can
send, the sum over the 7-day windows of ``ceil(items / 1000)`` (each window ends with its own
page); in seconds, that many requests at the rate plus one full page's latency. "simple"
fetches one window and one page at a time, as the vendor's example does. ``--slow`` adds rows
with full pages of 2 s and of 4 s, as the CLI pages and as ``async for`` does, with the
client's peak RSS. Output format is stable: compare tables over time.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import attrs
import orjson

from vccasync._config import ClientConfig
from vccasync._jsonio import stdlib_only
from vccasync._page import decode_page
from vccasync._search.fanout import BUFFER_ITEMS
from vccasync._search.search_run import running_cap
from vccasync._windows import RESOLUTION, split
from vccasync.fake import DatasetSpec, generate

from .bounds import shape_seconds

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
PAGE = 1000


class Scenario(NamedTuple):
    key: str
    label: str
    days: int
    per_day: int
    busy_day: int | None = None
    busy_factor: float = 1.0
    tie_size: int = 0
    tie_day: float | None = None
    busy_days: int = 1
    burst: int = 1  # the client's budget lets this many requests through at once

    @property
    def end(self) -> datetime:
        return START + timedelta(days=self.days) - RESOLUTION

    @property
    def fake_args(self) -> list[str]:
        """The fake's options for this range (``--seed=1``, as ``spec`` has it)."""
        args = [f"--days={self.days}", f"--per-day={self.per_day}", "--seed=1"]
        if self.busy_day is not None:
            args += [f"--busy-day={self.busy_day}", f"--busy-factor={self.busy_factor}"]
            args += [f"--busy-days={self.busy_days}"]
        if self.tie_size:
            args += [f"--tie-size={self.tie_size}", f"--tie-day={self.tie_day}"]
        return args

    def spec(self) -> DatasetSpec:
        """The dataset the fake serves (generated the same way)."""
        tie_at = None if self.tie_day is None else START + timedelta(days=self.tie_day)
        return DatasetSpec(
            seed=1,
            start=START,
            days=self.days,
            per_day=self.per_day,
            busy_day=self.busy_day,
            busy_factor=self.busy_factor,
            busy_days=self.busy_days,
            tie_size=self.tie_size,
            tie_at=tie_at,
        )


def scenarios(quick: bool) -> list[Scenario]:
    return [
        Scenario("a", "40 days even", 40, 1500),
        Scenario("b", "dense week", 7, 3500, 2, 3, 1200, 4.44),
        Scenario("c", "one year" + (" (1/4)" if quick else ""), 365, 685 if quick else 2740),
        Scenario("d", "40 d, busy week", 40, 800, 14, 2.8, busy_days=7),
        Scenario("e", "40 d, 900 a day", 40, 900, burst=4),
    ]


@functools.cache
def window_pages(scenario: Scenario) -> tuple[float, ...]:
    """Pages (items / page size) in each 7-day window of the range, earliest first."""
    data = generate(scenario.spec())
    return tuple(len(data.expected(w.start, w.end)) / PAGE for w in split(START, scenario.end))


def floor_requests(scenario: Scenario) -> int:
    """The fewest requests any client can send: each 7-day window ends with its own page."""
    return sum(max(1, math.ceil(pages)) for pages in window_pages(scenario))


@contextmanager
def fake_api(scenario: Scenario, rate: int, costs: Costs) -> Iterator[str]:
    """The fake API in a child process; yields its API root URL."""
    command = [
        sys.executable,
        "-m",
        "vccasync.fake",
        "--port=0",
        f"--start={START.isoformat()}",
        f"--page-latency={costs.page}",
        f"--item-latency={costs.item}",
        f"--rate-limit={rate}",
        *scenario.fake_args,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if match := re.match(r"API root:\s+(\S+)", line):
                yield match.group(1)
                break
        else:
            raise RuntimeError("the fake API did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Costs(NamedTuple):
    """What the fake takes to answer a page: ``page`` seconds plus ``item`` per item."""

    page: float
    item: float

    @property
    def full_page(self) -> float:
        return self.page + self.item * PAGE


SLOW = (Costs(0.5, 0.0015), Costs(1.0, 0.003))  # full pages of 2 s and of 4 s


def backfill(
    scenario: Scenario,
    rate: int,
    costs: Costs,
    *,
    concurrency: int,
    ordered: bool,
    sink: str = "none",
) -> dict[str, Any]:
    with fake_api(scenario, rate, costs) as api_url:
        auth_url = api_url.replace("/interaction-content", "/auth")
        command = [
            sys.executable,
            "-m",
            "benchmarks.stream",
            api_url,
            auth_url,
            START.isoformat(),
            scenario.end.isoformat(),
            f"--rate={rate}",
            f"--sink={sink}",
            f"--concurrency={concurrency}",
            f"--burst={scenario.burst}",
            *(["--ordered"] if ordered else []),
        ]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def ideal_seconds(scenario: Scenario, items: int, rate: int, costs: Costs) -> float:
    windows = len(split(START, scenario.end))
    requests = max(windows, math.ceil(items / PAGE))
    return requests / (rate / 60) + costs.page + costs.item * min(items, PAGE)


def floor_seconds(scenario: Scenario, rate: int, costs: Costs) -> float:
    """The request floor at ``rate``, plus one full page's latency."""
    return floor_requests(scenario) / (rate / 60) + costs.full_page


def shape_bound(scenario: Scenario, rate: int, costs: Costs, concurrency: int) -> float:
    """The shape bound of a row (``benchmarks.bounds``)."""
    return shape_seconds(
        window_pages(scenario),
        per_second=rate / 60,
        full_page=costs.full_page,
        half_page=costs.page + costs.item * PAGE / 2,
        burst=scenario.burst,
        concurrency=concurrency,
    )


def _cpu_seconds(read: Callable[[bytes], Any], body: bytes, pages: int) -> float:
    """CPU seconds to ``read`` ``body`` ``pages`` times, each page kept until the next is read."""
    began, page = time.process_time(), None
    for _ in range(pages):
        page = read(body)
    del page
    return time.process_time() - began


class Rate(NamedTuple):
    """Interactions per second: the best round (the headline) and the median one."""

    best: float
    median: float


def cpu_page() -> bytes:
    """A full page of the fake's interactions, as the API sends it."""
    data = generate(DatasetSpec(seed=3, days=3, per_day=2000))
    return orjson.dumps({"items": [data.item(p) for p in range(PAGE)], "meta": {}})


def bare_page(body: bytes) -> list[Any]:
    """The bound of any structuring in Python: the same objects as ``decode_page`` builds
    (the interactions, their contents, properties when present, one agent reference each,
    the instants parsed), each field stored as it is, nothing checked, no extras, the
    collector paused; built the fastest way known (a builder subclass, then its class)."""
    from vccasync._converter import _CONTENT, _INTERACTION, _PROPERTIES
    from vccasync._models import AgentRef, Content, ContentProperties, Interaction

    new, instant, out = object.__new__, datetime.fromisoformat, []
    agent = AgentRef("1")
    gc.disable()
    try:
        for data in orjson.loads(body)["items"]:
            obj = new(_INTERACTION)
            obj.guid, obj.start = data["guid"], instant(data["start"])
            obj.connect_from, obj.connect_to = data.get("connectFrom"), data.get("connectTo")
            obj.direction, obj.handling_agents, obj.extra = data.get("direction"), (agent,), {}
            contents = []
            for raw in data["content"]:
                piece = new(_CONTENT)
                piece.content_key, piece.type = raw["contentKey"], raw["type"]
                piece.content_type, piece.content_length = raw.get("contentType"), None
                piece.last_modified = instant(raw["lastModified"])
                piece.owning_agent = piece.owning_interaction_plan = None
                props = raw.get("properties")
                if props:
                    props = new(_PROPERTIES)
                    props.duration = props.version = None
                    props.extra = {}
                    props.__class__ = ContentProperties
                piece.properties, piece.extra = props, {}
                piece.__class__ = Content
                contents.append(piece)
            obj.content = tuple(contents)
            obj.__class__ = Interaction
            out.append(obj)
    finally:
        gc.enable()
    return out


def _paused(read: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``read`` with the cyclic garbage collector paused, as ``decode_page`` reads a page."""

    def paused(body: bytes) -> Any:
        gc.disable()
        try:
            return read(body)
        finally:
            gc.enable()

    return paused


def cpu_rates(rounds: int = 15, pages: int = 5) -> dict[str, list[float]]:
    """CPU seconds of ``rounds`` runs of ``pages`` pages, one core, alternately: the parser
    alone (``orjson.loads``) with the collector paused as ``decode_page`` pauses it, and on,
    ``decode_page`` (bytes to ``Interaction`` objects) with orjson, without it, and the bare
    build (``bare_page``). The garbage collector is on between pages, as in use."""
    body = cpu_page()
    runs: dict[str, list[float]] = {"parser": [], "on": [], "fast": [], "slow": [], "bare": []}
    for _ in range(rounds):
        runs["parser"].append(_cpu_seconds(_paused(orjson.loads), body, pages))
        runs["on"].append(_cpu_seconds(orjson.loads, body, pages))
        runs["fast"].append(_cpu_seconds(decode_page, body, pages))
        runs["bare"].append(_cpu_seconds(bare_page, body, pages))
        with stdlib_only():
            runs["slow"].append(_cpu_seconds(decode_page, body, pages))
    return runs


def cpu_line(rounds: int = 15, pages: int = 5) -> str:
    """Structuring against the parser on the same bytes (best and median rounds), and the
    rates with orjson and with the standard library's json."""
    runs = cpu_rates(rounds, pages)
    items = PAGE * pages
    rate = {k: Rate(items / min(v), items / statistics.median(v)) for k, v in runs.items()}

    def ratio(key: str) -> str:
        best = min(runs[key]) / min(runs["parser"])
        median = statistics.median(runs[key]) / statistics.median(runs["parser"])
        return f"{best:.2f} (median {median:.2f})"

    return (
        f"CPU: decode_page / orjson.loads on the same bytes {ratio('fast')}, the bare build"
        f" of the same objects (nothing checked) {ratio('bare')}, orjson.loads with the"
        f" collector on {ratio('on')};"
        f" {rate['fast'].best:,.0f} interactions/s (median {rate['fast'].median:,.0f})"
        f" structured from page bytes, one core; orjson.loads alone {rate['parser'].best:,.0f}/s;"
        f" {rate['slow'].best:,.0f}/s (median {rate['slow'].median:,.0f}) without orjson"
    )


def cpu_profile(pages: int = 200, top: int = 25) -> None:
    """Where ``decode_page``'s time goes: cProfile over ``pages`` pages, by own time."""
    import cProfile
    import pstats

    body = cpu_page()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(pages):
        decode_page(body)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def fast_table(args: argparse.Namespace, rates: list[int], costs: Costs) -> tuple[Any, ...] | None:
    """The table at ``costs`` (the defaults: fast pages); the year's row for the memory line."""
    print(
        f"fake API: {costs.page:.2f} s a page + {costs.item * 1000:.1f} ms an item,"
        f" pages of {PAGE}; client concurrency {args.concurrency},"
        f" {'ordered' if args.ordered else 'pages as they arrive (as the CLI)'}"
    )
    print()
    head = (
        f"{'range':<18}{'rate/min':>9}{'items':>9}{'requests':>9}{'floor':>6}{'429s':>6}"
        f"{'ideal s':>9}{'floor s':>8}{'vccasync s':>11}{'vs ideal':>9}{'vs floor':>9}"
        f"{'simple s':>9}{'speed-up':>9}"
    )
    print(head)
    print("-" * len(head))
    year = None
    for rate in rates:
        for scenario in scenarios(args.quick):
            if scenario.key not in args.only or scenario.burst > 1:
                continue  # the burst's row is a slow-page row
            sink = "jsonl" if scenario.key == "c" else "none"
            got = backfill(
                scenario, rate, costs, concurrency=args.concurrency, ordered=args.ordered, sink=sink
            )
            ideal = ideal_seconds(scenario, got["items"], rate, costs)
            skip = args.no_simple or (scenario.key == "c" and args.no_simple_year)
            simple = None
            if not skip:
                simple = backfill(scenario, rate, costs, concurrency=1, ordered=args.ordered)
            simple_s = f"{simple['seconds']:9.1f}" if simple else f"{'-':>9}"
            speedup = f"{simple['seconds'] / got['seconds']:8.2f}x" if simple else f"{'-':>9}"
            floor = floor_seconds(scenario, rate, costs)
            print(
                f"{scenario.label:<18}{rate:>9}{got['items']:>9}{got['requests']:>9}"
                f"{floor_requests(scenario):>6}{got['rate_limited']:>6}{ideal:>9.1f}"
                f"{floor:>8.1f}{got['seconds']:>11.1f}{got['seconds'] / ideal:>9.2f}"
                f"{got['seconds'] / floor:>9.2f}{simple_s}{speedup}",
                flush=True,
            )
            if scenario.key == "c":
                year = (scenario, rate, got)
    return year


def slow_table(args: argparse.Namespace, rates: list[int]) -> None:
    """Slow pages (a full page of 2 s and of 4 s), both iteration modes, against the floor."""
    print(
        f"slow pages: the floor is the sum over the 7-day windows of ceil(items / {PAGE})"
        " requests; floor s is that many requests at the rate plus one full page; shape s"
        " is the best run of a client that learns each window from its first page and whose"
        " parts end part-filled (benchmarks/bounds.py)"
    )
    print()
    head = (
        f"{'range':<16}{'page s':>7}{'rate/min':>9}{'burst':>6}{'mode':>10}{'items':>8}"
        f"{'requests':>9}"
        f"{'floor':>6}{'429s':>5}{'ideal s':>8}{'floor s':>8}{'vccasync s':>11}"
        f"{'vs floor':>9}{'shape s':>8}{'vs shape':>9}{'peak MiB':>9}"
    )
    print(head)
    print("-" * len(head))
    for costs in SLOW:
        for rate in rates:
            for scenario in scenarios(quick=True):
                if scenario.key not in args.only or (scenario.key == "c" and rate < 960):
                    continue  # the (quarter) year: at 960/min only
                for ordered in (False, True):
                    got = backfill(
                        scenario, rate, costs, concurrency=args.concurrency, ordered=ordered
                    )
                    floor = floor_seconds(scenario, rate, costs)
                    cap = running_cap(
                        args.concurrency, ordered=ordered, buffer_items=BUFFER_ITEMS, limit=PAGE
                    )
                    shape = shape_bound(scenario, rate, costs, cap)
                    print(
                        f"{scenario.label:<16}{costs.full_page:>7.1f}{rate:>9}{scenario.burst:>6}"
                        f"{'async for' if ordered else 'pages':>10}{got['items']:>8}"
                        f"{got['requests']:>9}{floor_requests(scenario):>6}"
                        f"{got['rate_limited']:>5}"
                        f"{ideal_seconds(scenario, got['items'], rate, costs):>8.1f}{floor:>8.1f}"
                        f"{got['seconds']:>11.1f}{got['seconds'] / floor:>9.2f}"
                        f"{shape:>8.1f}{got['seconds'] / shape:>9.2f}"
                        f"{got['peak_rss_mib']:>9.0f}",
                        flush=True,
                    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a quarter-size year")
    p.add_argument("--rates", default="160,960", help="requests per minute, comma-separated")
    p.add_argument("--only", default="abcde", help="ranges to run: a to e (default all)")
    p.add_argument("--no-simple", action="store_true", help="skip the one-page-at-a-time runs")
    p.add_argument("--no-simple-year", action="store_true", help="skip it for the year only")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--slow", action="store_true", help="also the slow-page rows")
    p.add_argument("--slow-only", action="store_true", help="only the slow-page rows")
    p.add_argument("--concurrency", type=int, default=None, help="cap (default: the client's)")
    p.add_argument("--ordered", action="store_true", help="chronological (default: as the CLI)")
    p.add_argument("--page-latency", type=float, default=0.3, help="seconds per page")
    p.add_argument("--item-latency", type=float, default=0.0002, help="seconds per item")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU figure")
    p.add_argument("--cpu", action="store_true", help="only the CPU figure")
    p.add_argument("--profile", action="store_true", help="cProfile of decode_page, by own time")
    args = p.parse_args(argv)
    if args.concurrency is None:
        args.concurrency = attrs.fields(ClientConfig).concurrency.default
    print(f"vccasync benchmarks, {datetime.now(UTC):%Y-%m-%d}, {machine()}")
    if args.profile:
        cpu_profile()
        return
    if args.cpu:
        print(cpu_line())
        return
    rates = [int(r) for r in args.rates.split(",")]
    if args.slow_only:
        slow_table(args, rates)
        return
    year = fast_table(args, rates, Costs(args.page_latency, args.item_latency))
    print()
    if args.slow:
        slow_table(args, rates)
        print()
    if not args.no_cpu:
        print(cpu_line())
    if year is not None and not args.no_memory:
        # always the whole year (about a million interactions), at the fastest rate given:
        # peak RSS depends on the range and the buffers, not on the rate
        scenario = next(s for s in scenarios(quick=False) if s.key == "c")
        rate = max(rates)
        costs = Costs(args.page_latency, args.item_latency)
        peaks = {
            sink: backfill(
                scenario, rate, costs, concurrency=args.concurrency, ordered=False, sink=sink
            )
            for sink in ("jsonl", "sqlite")
        }
        print(
            f"Memory: {scenario.label}, {peaks['jsonl']['items']:,} interactions streamed"
            f" through the CLI's sinks at {rate}/min: peak RSS"
            f" JSONL {peaks['jsonl']['peak_rss_mib']:.0f} MiB,"
            f" SQLite {peaks['sqlite']['peak_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
