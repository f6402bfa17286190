"""``vccasync plan``: a backfill of many accounts as JSON tasks, one a line, for ``run-task``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vccasync._config import DEFAULT_RATE
from vccasync.distributed._tasks import SPLITS, plan_search

from ._common import DeprecatedAlias, add_search_options, positive, query_from_args

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Print the tasks of a backfill, one JSON object a line: each account's range cut at calendar
months (or weeks from Monday, days, or not at all), with the filters and each task's share of
its account's request budget (at most --parallel tasks of an account running at once). Tasks
name their account and never carry credentials. Run them with `vccasync run-task`, or on Dask
with vccasync.distributed.run_tasks.
"""


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "plan", help="print a many-account backfill as JSON tasks", description=DESCRIPTION
    )
    add_search_options(parser)
    parser.add_argument(
        "--account", action="append", required=True, metavar="NAME",
        help="an account to back up (repeat for more)",
    )  # fmt: skip
    parser.add_argument("--split-by", choices=SPLITS, default="month", help="default: month")
    parser.add_argument(
        "--account-rpm", type=positive(float, "number"), default=DEFAULT_RATE, metavar="N",
        dest="account_rpm",
        help=f"each account's request budget, shared by its tasks (default {DEFAULT_RATE:g})",
    )  # fmt: skip
    parser.add_argument(  # the old spelling, which meant the client's budget elsewhere
        "--requests-per-minute", "--rpm", type=positive(float, "number"), dest="account_rpm",
        action=DeprecatedAlias, new="--account-rpm",
    )  # fmt: skip
    parser.add_argument(
        "--parallel", type=positive(int, "whole number"), default=4, metavar="K",
        help="tasks of one account running at once; each gets a K-th of the budget (default 4)",
    )  # fmt: skip
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Print the tasks."""
    tasks = plan_search(
        query_from_args(args),
        accounts=args.account,
        split_by=args.split_by,
        requests_per_minute=args.account_rpm,
        parallel=args.parallel,
    )
    sys.stdout.write("".join(json.dumps(t.to_json()) + "\n" for t in tasks))
    return 0
