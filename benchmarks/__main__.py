"""``python -m benchmarks``: vccasync against the rate-limit ideal, the simple way, CPU, memory.

Each timed run starts the project's fake API in its own process (a page costs
``--page-latency`` seconds plus ``--item-latency`` per item; the fake enforces the same
requests-per-minute limit as the client is given) and runs the client in another process, so
the client's peak RSS is its own. The ideal is ``max(windows, ceil(items / 1000))`` requests
at the allowed rate plus one page's latency. "simple" fetches one window and one page at a
time, as the vendor's example does. Output format is stable: compare tables over time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from vccasync.converter import decode_page
from vccasync.fake import DatasetSpec, generate
from vccasync.jsonio import stdlib_only
from vccasync.windows import RESOLUTION, split

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
PAGE = 1000


class Scenario(NamedTuple):
    key: str
    label: str
    days: int
    per_day: int
    fake_args: tuple[str, ...] = ()

    @property
    def end(self) -> datetime:
        return START + timedelta(days=self.days) - RESOLUTION


def scenarios(quick: bool) -> list[Scenario]:
    return [
        Scenario("a", "40 days even", 40, 1500),
        Scenario(
            "b",
            "dense week",
            7,
            3500,
            ("--busy-day", "2", "--busy-factor", "3", "--tie-size", "1200", "--tie-day", "4.44"),
        ),
        Scenario("c", "one year" + (" (1/4)" if quick else ""), 365, 685 if quick else 2740),
    ]


@contextmanager
def fake_api(scenario: Scenario, rate: int, args: argparse.Namespace) -> Iterator[str]:
    """The fake API in a child process; yields its API root URL."""
    command = [
        sys.executable,
        "-m",
        "vccasync.fake",
        "--port=0",
        f"--start={START.isoformat()}",
        f"--days={scenario.days}",
        f"--per-day={scenario.per_day}",
        f"--page-latency={args.page_latency}",
        f"--item-latency={args.item_latency}",
        f"--rate-limit={rate}",
        "--seed=1",
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


def backfill(
    scenario: Scenario, rate: int, args: argparse.Namespace, *, simple: bool, sink: str = "none"
) -> dict[str, Any]:
    with fake_api(scenario, rate, args) as api_url:
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
            f"--concurrency={1 if simple else args.concurrency}",
            *(["--ordered"] if args.ordered else []),
        ]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def ideal_seconds(scenario: Scenario, items: int, rate: int, args: argparse.Namespace) -> float:
    windows = len(split(START, scenario.end))
    requests = max(windows, math.ceil(items / PAGE))
    return requests / (rate / 60) + args.page_latency + args.item_latency * min(items, PAGE)


def _cpu_seconds(body: bytes, pages: int) -> float:
    """CPU seconds to decode ``body`` ``pages`` times, each page kept until the next is read."""
    began, page = time.process_time(), None
    for _ in range(pages):
        page = decode_page(body)
    del page
    return time.process_time() - began


def cpu_rates(rounds: int = 15, pages: int = 5) -> tuple[float, float]:
    """Interactions per second from raw page bytes to ``Interaction`` objects, one core, with
    orjson and without: CPU time, the best of ``rounds`` runs of ``pages`` pages of each,
    alternately. The garbage collector stays on, as in use (``timeit`` turns it off)."""
    data = generate(DatasetSpec(seed=3, days=3, per_day=2000))
    body = orjson.dumps({"items": [data.item(p) for p in range(PAGE)], "meta": {}})
    fast = slow = math.inf
    for _ in range(rounds):
        fast = min(fast, _cpu_seconds(body, pages))
        with stdlib_only():
            slow = min(slow, _cpu_seconds(body, pages))
    return PAGE * pages / fast, PAGE * pages / slow


def cpu_line() -> str:
    """The CPU figure with orjson and with the standard library's json."""
    fast, slow = cpu_rates()
    return (
        f"CPU: {fast:,.0f} interactions/s structured from page bytes, one core"
        f" ({slow:,.0f}/s without orjson)"
    )


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a quarter-size year")
    p.add_argument("--rates", default="160,960", help="requests per minute, comma-separated")
    p.add_argument("--only", default="abc", help="ranges to run: a, b, c (default all)")
    p.add_argument("--no-simple", action="store_true", help="skip the one-page-at-a-time runs")
    p.add_argument("--no-simple-year", action="store_true", help="skip it for the year only")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--ordered", action="store_true", help="chronological (default: as the CLI)")
    p.add_argument("--page-latency", type=float, default=0.3, help="seconds per page")
    p.add_argument("--item-latency", type=float, default=0.0002, help="seconds per item")
    p.add_argument("--cpu", action="store_true", help="only the CPU figure")
    args = p.parse_args(argv)
    if args.cpu:
        print(f"vccasync benchmarks, {datetime.now(UTC):%Y-%m-%d}, {machine()}")
        print(cpu_line())
        return
    rates = [int(r) for r in args.rates.split(",")]
    print(f"vccasync benchmarks, {datetime.now(UTC):%Y-%m-%d}, {machine()}")
    print(
        f"fake API: {args.page_latency:.2f} s a page + {args.item_latency * 1000:.1f} ms an item,"
        f" pages of {PAGE}; client concurrency {args.concurrency},"
        f" {'ordered' if args.ordered else 'pages as they arrive (as the CLI)'}"
    )
    print()
    head = (
        f"{'range':<18}{'rate/min':>9}{'items':>9}{'requests':>9}{'429s':>6}{'ideal s':>9}"
        f"{'vccasync s':>11}{'vs ideal':>9}{'simple s':>9}{'speed-up':>9}"
    )
    print(head)
    print("-" * len(head))
    year = None
    for rate in rates:
        for scenario in scenarios(args.quick):
            if scenario.key not in args.only:
                continue
            sink = "jsonl" if scenario.key == "c" else "none"
            got = backfill(scenario, rate, args, simple=False, sink=sink)
            ideal = ideal_seconds(scenario, got["items"], rate, args)
            skip = args.no_simple or (scenario.key == "c" and args.no_simple_year)
            simple = None if skip else backfill(scenario, rate, args, simple=True)
            simple_s = f"{simple['seconds']:9.1f}" if simple else f"{'-':>9}"
            speedup = f"{simple['seconds'] / got['seconds']:8.2f}x" if simple else f"{'-':>9}"
            print(
                f"{scenario.label:<18}{rate:>9}{got['items']:>9}{got['requests']:>9}"
                f"{got['rate_limited']:>6}{ideal:>9.1f}{got['seconds']:>11.1f}"
                f"{got['seconds'] / ideal:>9.2f}{simple_s}{speedup}",
                flush=True,
            )
            if scenario.key == "c":
                year = (scenario, rate, got)
    print()
    print(cpu_line())
    if year is not None and not args.no_memory:
        # always the whole year (about a million interactions), at the fastest rate given:
        # peak RSS depends on the range and the buffers, not on the rate
        scenario, rate = scenarios(quick=False)[-1], max(rates)
        peaks = {
            sink: backfill(scenario, rate, args, simple=False, sink=sink)
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
