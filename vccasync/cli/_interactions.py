"""``vccasync interactions``: back up every interaction of a range to JSONL or SQLite, resumably."""

from __future__ import annotations

import argparse
import sys
from contextlib import AsyncExitStack
from typing import Any

from vccasync._counts import count
from vccasync._errors import AuthenticationError
from vccasync._windows import Page
from vccasync.stores._base import write_search
from vccasync.stores._output import open_sink

from ._common import (
    add_account_option,
    add_client_options,
    add_search_options,
    connect,
    open_client,
    query_from_args,
    say,
    summary_on_stop,
)
from ._progress import Tally, display_for, summary

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Back up the metadata of every interaction from --start to --end (both included) to
FILE.jsonl / FILE.ndjson (one interaction a line, the API's JSON shape), FILE.sqlite /
FILE.sqlite3 / FILE.db (tables interactions and content), a postgresql:// database (the
same tables, shared by many runs) or - (stdout). Rerunning the same command resumes where
it stopped; a finished backfill is not fetched again.
"""


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "interactions",
        help="back up interaction metadata to JSONL, SQLite or PostgreSQL (resumable)",
        description=DESCRIPTION,
    )
    add_search_options(parser)
    parser.add_argument(
        "--output", "-o", required=True, metavar="FILE",
        help="FILE.jsonl, FILE.ndjson, FILE.sqlite, FILE.sqlite3, FILE.db,"
        " postgresql://USER@HOST/DB, or - for stdout",
    )  # fmt: skip
    add_account_option(parser)
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace an output that holds another query or was not written by vccasync",
    )  # fmt: skip
    add_client_options(parser)
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Validate everything, open the output, then fetch page after page into it."""
    query = query_from_args(args)
    tally: Tally | None = None
    target = "stdout"

    def stopped() -> str | None:
        # said once the output is closed, every write in flight finished: what the store holds
        return None if tally is None or target == "stdout" else summary(tally, target, "stopped")

    with summary_on_stop(stopped, unless=AuthenticationError):
        async with AsyncExitStack() as stack:
            vcc = await open_client(args, stack)
            sink = await stack.enter_async_context(
                await open_sink(args.output, query, overwrite=args.overwrite, account=args.account)
            )
            checkpoint = sink.checkpoint
            if checkpoint.done:
                say(
                    f"vccasync: already complete: {count(checkpoint.written, 'interaction')} in"
                    f" {sink.target}; nothing to fetch (use --overwrite to fetch again)"
                )
                return 0
            await connect(vcc, stack)
            if checkpoint.written or checkpoint.windows_done:
                say(
                    f"vccasync: resuming {sink.target}:"
                    f" {count(checkpoint.written, 'interaction')} and"
                    f" {checkpoint.windows_done}/{count(checkpoint.windows_total, 'window')}"
                    " already done"
                )
            tally = progress = Tally(checkpoint, vcc.stats, budget=vcc.config.requests_per_minute)
            target = sink.target
            # pages as they arrive: no window waits behind another, so the budget is used whole
            search = vcc.search(query, ordered=False, plan=checkpoint.plan())
            with display_for(progress, sys.stderr, quiet=args.quiet) as display:

                def written(page: Page) -> None:
                    progress.advance(page)
                    display.refresh()

                await write_search(sink, search, written)
        say(summary(progress, target, "complete"))
    return 0
