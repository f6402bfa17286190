"""``python -m vccasync.fake``: serve the fake API on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime, timedelta

from vccasync.fake.config import ORDERS, FakeConfig
from vccasync.fake.faults import ALL_KINDS, FaultConfig
from vccasync.fake.generate import generate
from vccasync.fake.server import FakeVccServer
from vccasync.fake.spec import DatasetSpec
from vccasync.fake.timeline import FakeClock, Timeline, demo_spec


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vccasync.fake", description=__doc__)
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--per-day", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tie-size", type=int, default=0, help="interactions on one instant")
    p.add_argument("--tie-day", type=float, default=None, help="days from start to the tie")
    p.add_argument("--busy-day", type=int, default=None, help="day (0-based) with more traffic")
    p.add_argument("--busy-factor", type=float, default=1.0, help="traffic of the busy day")
    p.add_argument("--busy-days", type=int, default=1, help="busy days from --busy-day on")
    p.add_argument("--start", default="2025-01-01T00:00:00+00:00", help="ISO 8601, aware")
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--fault-kinds", default=",".join(ALL_KINDS), help="comma-separated")
    p.add_argument("--page-latency", type=float, default=0.0, help="seconds per page")
    p.add_argument("--item-latency", type=float, default=0.0, help="seconds per item")
    p.add_argument("--rate-limit", type=int, default=None, help="API requests per minute")
    p.add_argument("--token-ttl", type=float, default=3600.0, help="seconds")
    p.add_argument("--end-exclusive", action="store_true", help="search end is exclusive")
    p.add_argument("--order", choices=ORDERS, default="start", help="how windows are paged")
    p.add_argument(
        "--hold-after",
        type=int,
        default=None,
        help="hold search/content answers after N of them (POST /_fake/gate?open=1 releases)",
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="data from --days before today to tomorrow that changes with the wall clock"
        " (content revealed late, interactions removed or appearing; ignores --start)",
    )
    return p


async def _serve(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    start = datetime.fromisoformat(args.start)
    spec = DatasetSpec(
        seed=args.seed,
        start=start,
        days=args.days,
        per_day=args.per_day,
        tie_size=args.tie_size,
        tie_at=None if args.tie_day is None else start + timedelta(days=args.tie_day),
        busy_day=args.busy_day,
        busy_factor=args.busy_factor,
        busy_days=args.busy_days,
    )
    if args.live:
        spec = demo_spec(days=args.days, per_day=args.per_day, seed=args.seed)
    dataset = generate(spec)
    dataset.build_guid_index()
    config = FakeConfig(
        token_ttl=args.token_ttl,
        page_latency=args.page_latency,
        per_item_latency=args.item_latency,
        rate_limit_per_minute=args.rate_limit,
        end_inclusive=not args.end_exclusive,
        order=args.order,
        hold_after=args.hold_after,
        faults=FaultConfig(
            rate=args.fault_rate, kinds=tuple(args.fault_kinds.split(",")), seed=args.seed
        ),
        timeline=Timeline.for_dataset(dataset, FakeClock()) if args.live else None,
    )
    async with FakeVccServer(dataset, config, port=args.port) as server:
        print(
            f"{len(dataset)} interactions ({dataset.visible_count} with content), "
            f"{spec.start.isoformat()} .. {spec.end.isoformat()}, "
            f"generated in {time.perf_counter() - began:.1f}s"
        )
        print(f"API root:       {server.api_url}")
        print(f"Token endpoint: {server.auth_url}/connect/token")
        print(f"Client id:      {server.client_id}")
        print(f"Client secret:  {server.client_secret}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        print("stopped")


if __name__ == "__main__":
    main()
