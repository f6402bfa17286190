"""One backfill in its own process, so its peak RSS is the client's alone.

``python -m benchmarks.stream API_URL AUTH_URL START END [--sink none|jsonl|sqlite] ...``
prints one JSON line: items, seconds, requests, 429s, peak RSS (MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from vccasync import VccClient, to_api


async def _run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    client = VccClient(
        client_id="demo-client",
        client_secret="demo-secret",
        api_url=args.api_url,
        auth_url=args.auth_url,
        concurrency=args.concurrency,
        requests_per_minute=args.rate,
    )
    items = 0
    began = time.perf_counter()
    async with client as vcc:
        search = vcc.interactions(args.start, args.end, ordered=not args.unordered)
        if args.sink == "jsonl":
            with out.open("wb") as fh:
                async for page in search.pages():
                    fh.write(b"".join(orjson.dumps(to_api(i)) + b"\n" for i in page.items))
                    items += len(page.items)
        elif args.sink == "sqlite":
            db = sqlite3.connect(out)
            db.execute("create table interactions (guid text primary key, start text, json blob)")
            async for page in search.pages():
                rows = [(i.guid, i.start.isoformat(), orjson.dumps(to_api(i))) for i in page.items]
                db.executemany("insert into interactions values (?, ?, ?)", rows)
                db.commit()
                items += len(rows)
            db.close()
        else:
            async for page in search.pages():
                items += len(page.items)
        stats = vcc.stats
    return {
        "items": items,
        "seconds": time.perf_counter() - began,
        "requests": stats.requests,
        "rate_limited": stats.rate_limited,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream")
    p.add_argument("api_url")
    p.add_argument("auth_url")
    p.add_argument("start")
    p.add_argument("end")
    p.add_argument("--sink", choices=("none", "jsonl", "sqlite"), default="none")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rate", type=float, default=None, help="client requests per minute")
    p.add_argument("--unordered", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(_run(args, Path(tmp) / f"out.{args.sink}"))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
