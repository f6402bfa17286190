"""``python -m vccasync.fake``: serve the fake API on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime, timedelta

from vccasync.fake._config import ORDERS, FakeConfig
from vccasync.fake._faults import ALL_KINDS, FaultConfig
from vccasync.fake._generate import generate
from vccasync.fake._server import FakeVccServer
from vccasync.fake._spec import DatasetSpec
from vccasync.fake._timeline import FakeClock, Timeline, demo_spec

DESCRIPTION = """\
Serve the fake Interaction Content API on 127.0.0.1 until Ctrl-C: seeded interactions with
the API's quirks, optional faults, a rate limit and a gate. It prints the API root, the token
endpoint and a client id and secret to use (VCC_API_URL, VCC_AUTH_URL, VCC_CLIENT_ID,
VCC_CLIENT_SECRET; --auth-url takes the token endpoint as printed).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vccasync.fake",
        description=DESCRIPTION,
    )
    data = p.add_argument_group("data", "what is generated (equal settings, equal data)")
    data.add_argument(
        "--days",
        type=int,
        default=90,
        metavar="N",
        help="days of interactions (default %(default)s)",
    )
    data.add_argument(
        "--per-day",
        type=int,
        default=150,
        metavar="N",
        help="interactions a day, on average (default %(default)s)",
    )
    data.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the data and of the faults (default %(default)s)",
    )
    data.add_argument(
        "--start", default="2025-01-01T00:00:00+00:00",
        metavar="ISO", help="first instant of the data, ISO 8601 with an offset"
        " (default %(default)s)",
    )  # fmt: skip
    data.add_argument(
        "--tie-size", type=int, default=0,
        metavar="N",
        help="interactions on one instant (default 0: none, or a page and 200 more with --tie-day)",
    )  # fmt: skip
    data.add_argument(
        "--tie-day", type=float, default=None,
        metavar="DAYS",
        help="days from --start to that instant (default: day 1, 10:30)",
    )  # fmt: skip
    data.add_argument(
        "--busy-day", type=int, default=None, metavar="N", help="a day (0-based) with more traffic"
    )
    data.add_argument(
        "--busy-factor",
        type=float,
        default=1.0,
        metavar="X",
        help="traffic factor of the busy days (default %(default)s)",
    )
    data.add_argument(
        "--busy-days",
        type=int,
        default=1,
        metavar="N",
        help="busy days from --busy-day on (default %(default)s)",
    )
    data.add_argument(
        "--live", action="store_true",
        help="data from --days before today to tomorrow that changes with the wall clock"
        " (content revealed late, interactions removed or appearing; ignores --start)",
    )  # fmt: skip
    serve = p.add_argument_group("serving", "how the data is served")
    serve.add_argument(
        "--port",
        type=int,
        default=8080,
        metavar="N",
        help="port on 127.0.0.1, 0: a free one (default %(default)s)",
    )
    serve.add_argument(
        "--order", choices=ORDERS, default="start",
        help="how a window is paged: by start time (as the API appears to, the default), by"
        " guid or by hour",
    )  # fmt: skip
    serve.add_argument(
        "--end-exclusive", action="store_true",
        help="treat a search's end as exclusive (the API includes it)",
    )  # fmt: skip
    serve.add_argument(
        "--page-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds per search page (default %(default)s)",
    )
    serve.add_argument(
        "--item-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds per interaction of a page (default %(default)s)",
    )
    serve.add_argument(
        "--rate-limit", type=int, default=None,
        metavar="N",
        help="API requests a minute before 429s (default: no limit)",
    )  # fmt: skip
    serve.add_argument(
        "--token-ttl",
        type=float,
        default=3600.0,
        metavar="S",
        help="token lifetime in seconds (default %(default)s)",
    )
    serve.add_argument(
        "--hold-after", type=int, default=None,
        metavar="N",
        help="hold search and content answers after N of them until POST /_fake/gate?open=1"
        " (default: never)",
    )  # fmt: skip
    faults = p.add_argument_group("faults")
    faults.add_argument(
        "--fault-rate", type=float, default=0.0,
        metavar="P",
        help="share of API requests that get a fault, 0 to 1 (default %(default)s)",
    )  # fmt: skip
    faults.add_argument(
        "--fault-kinds", default=",".join(ALL_KINDS), metavar="KIND,...",
        help=f"which faults, comma-separated, of {', '.join(ALL_KINDS)} (default: all)",
    )  # fmt: skip
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
