"""``python -m vccasync.dlt``: load the API into a DuckDB file with the dlt source.

``--demo`` serves the embedded fake API (data changing live around today) and loads it into
``vcc.duckdb``; run it again to load only what changed. Without ``--demo`` the credentials
come from dlt's config and secrets (``[sources.vcc]`` in ``.dlt/secrets.toml``, or
``SOURCES__VCC__CLIENT_ID``, ``SOURCES__VCC__CLIENT_SECRET``, ...).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs
import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

from .._errors import InvalidRequestError, VccError
from .._query import FILTERS
from ..cli import _demo as demo
from ..cli._common import (
    OneLineParser,
    add_filter_options,
    add_type_option,
    check_types,
    instant,
    positive,
)
from ..fake import generate, running_in_thread
from ..sync import parse_duration
from ._source import LOOKBACK, REMOVALS, vcc_source

__all__ = ["main"]

PIPELINE: Final = "vcc"
CONTENT_RPM: Final = demo.CONTENT_CONFIG.rate_limit_per_minute or 6000
DATASET: Final = "vcc_data"  # not "vcc", the name DuckDB gives the catalog of vcc.duckdb
QUERY: Final = (
    "select direction, count(*) as interactions from vcc_data.interactions"
    " where removed_at is null group by direction"
)


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m vccasync.dlt",
        description="Load interactions (and content) into a DuckDB file with the dlt source;"
        " each run loads what is new, changed or removed since the last.",
    )
    parser.add_argument(
        "--demo", action="store_true",
        help=f"serve the embedded fake API ({demo.SYNC_DATA})",
    )  # fmt: skip
    parser.add_argument(
        "--duckdb", default="vcc.duckdb", metavar="FILE", help="the DuckDB file (vcc.duckdb)"
    )
    parser.add_argument(
        "--pipelines-dir", metavar="DIR",
        help="dlt's working directory (default: dlt's own; with --demo a temporary one: the"
        " state is kept in the DuckDB file)",
    )  # fmt: skip
    parser.add_argument(
        "--since", type=instant, metavar="ISO",
        help="where the first load starts (with --demo: "
        f"{demo.SYNC_SINCE.days} days ago)",
    )  # fmt: skip
    parser.add_argument(
        "--lookback", default=LOOKBACK, metavar="DURATION",
        help=f"the lag each run starts before the last start loaded (default {LOOKBACK})",
    )  # fmt: skip
    parser.add_argument(
        "--removals", choices=REMOVALS, default="soft",
        help="soft: set removed_at (default); hard: delete the rows",
    )  # fmt: skip
    parser.add_argument(
        "--content-dest", metavar="DIR",
        help="also download the pieces here (manifest.jsonl) and load the content table",
    )  # fmt: skip
    add_type_option(parser)
    add_filter_options(parser)
    parser.add_argument("--account", default="default", help="the account column's value")
    parser.add_argument(
        "--rpm",
        type=positive(int, "whole number"),
        metavar="N",
        help=f"requests per minute (default 160; with --demo --content-dest {CONTENT_RPM}, the"
        " demo's small content is served faster)",
    )
    parser.add_argument(
        "--limit", type=positive(int, "whole number"), default=1000, metavar="N",
        help="page size, 1 to 1000 (1000)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one load; 0 when done, 2 on bad input, 1 when the run failed."""
    args = _parser().parse_args(argv)
    try:
        parse_duration(args.lookback, name="--lookback")
        check_types(args)
        return _load(args)
    except InvalidRequestError as exc:
        print(f"vccasync.dlt: error: {exc}", file=sys.stderr)
        return 2
    except PipelineStepFailed as exc:
        cause = _cause(exc)
        print(f"vccasync.dlt: the {exc.step} step failed: {cause}", file=sys.stderr)
        return 2 if isinstance(cause, InvalidRequestError) else 1


def _load(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        settings: dict[str, Any] = {}
        since = args.since
        pipelines_dir = args.pipelines_dir
        if args.demo:
            server = stack.enter_context(_demo_api(content=args.content_dest is not None))
            settings = demo.client_settings(server)
            since = since or datetime.now(UTC) - demo.SYNC_SINCE
            if pipelines_dir is None:
                pipelines_dir = stack.enter_context(tempfile.TemporaryDirectory())
        source = vcc_source(
            **settings,
            since=since,
            lookback=args.lookback,
            removals=args.removals,
            **{f.name: getattr(args, f.name) for f in FILTERS},
            account=args.account,
            content_dest=args.content_dest,
            content_types=args.types,
            requests_per_minute=args.rpm or _rpm(args),
            limit=args.limit,
        )
        pipeline = dlt.pipeline(
            pipeline_name=PIPELINE,
            destination=dlt.destinations.duckdb(str(Path(args.duckdb).resolve())),
            dataset_name=DATASET,
            pipelines_dir=pipelines_dir,
        )
        pipeline.run(source)
        trace = pipeline.last_trace
        info = None if trace is None else trace.last_normalize_info
        counts = {} if info is None else info.row_counts
        loaded = ", ".join(
            f"{table} {counts.get(table, 0):,}"
            for table in ("interactions", "interactions__content", "content")
            if table in counts or table == "interactions"
        )
        print(f"vccasync.dlt: rows loaded into {args.duckdb}: {loaded}", file=sys.stderr)
        print(f'vccasync.dlt: try: duckdb {args.duckdb} "{QUERY}"', file=sys.stderr)
    return 0


@contextmanager
def _demo_api(*, content: bool) -> Iterator[Any]:
    spec, config = demo.sync_demo()
    if content:
        config = attrs.evolve(config, rate_limit_per_minute=CONTENT_RPM)
    with running_in_thread(generate(spec), config) as server:
        yield server


def _rpm(args: argparse.Namespace) -> int:
    return CONTENT_RPM if args.demo and args.content_dest else 160


def _cause(exc: BaseException) -> BaseException:
    """The project's error under dlt's wrappers, else the innermost cause."""
    seen: BaseException | None = exc
    last = exc
    while seen is not None:
        if isinstance(seen, VccError):
            return seen
        last = seen
        seen = seen.__cause__ or seen.__context__
    return last


if __name__ == "__main__":
    sys.exit(main())
