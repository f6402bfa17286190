"""One backfill in its own process, so its peak RSS is the client's alone.

``python -m benchmarks.stream API_URL AUTH_URL START END [--sink none|jsonl|sqlite] ...``
writes through the CLI's own sinks (pages as they arrive, as the CLI does; ``--ordered``
for chronological order) and prints one JSON line: items, seconds, requests, 429s, peak RSS (MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vccasync import VccClient
from vccasync._query import make_query
from vccasync.stores._output import open_sink


async def _run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    client = VccClient(
        client_id="demo-client",
        client_secret="demo-secret",
        api_url=args.api_url,
        auth_url=args.auth_url,
        concurrency=args.concurrency,
        requests_per_minute=args.rate,
        burst=args.burst,
    )
    items = 0
    began = time.perf_counter()
    query = make_query(args.start, args.end)
    sink = None if args.sink == "none" else await open_sink(str(out), query)  # the CLI's own
    async with client as vcc:
        search = vcc.search(
            query, ordered=args.ordered, plan=sink.checkpoint.plan() if sink else None
        )
        async for page in search.pages():
            if sink is not None:
                await sink.write(page)
            items += len(page.items)
        if sink is not None:
            await sink.close()
        stats = vcc.stats
    return {
        "items": items,
        "seconds": time.perf_counter() - began,
        "requests": stats.requests,
        "rate_limited": stats.rate_limited,
        "peak_rss_mib": peak_rss_mib(),
    }


def peak_rss_mib() -> float:
    """This process's peak RSS: ``VmHWM`` where Linux has it (``ru_maxrss`` keeps the peak of
    the process that forked this one, which may be larger), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream")
    p.add_argument("api_url")
    p.add_argument("auth_url")
    p.add_argument("start")
    p.add_argument("end")
    p.add_argument("--sink", choices=("none", "jsonl", "sqlite"), default="none")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rate", type=float, default=None, help="client requests per minute")
    p.add_argument("--burst", type=int, default=1, help="requests at once after an idle spell")
    p.add_argument("--ordered", action="store_true", help="chronological (default: as the CLI)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(_run(args, Path(tmp) / f"out.{args.sink}"))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
