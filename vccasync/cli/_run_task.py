"""``vccasync run-task``: run one task of a plan into PostgreSQL, resuming from its checkpoint."""

from __future__ import annotations

import argparse
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from vccasync._counts import count
from vccasync._errors import InvalidRequestError
from vccasync.distributed._accounts import credentials
from vccasync.distributed._tasks import run_task, task_from_json
from vccasync.stores._postgres import redact_url, require_postgres

from . import _demo as demo
from ._common import positive, say

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Run one task printed by `vccasync plan` (a file holding one task, or - for standard input)
into a PostgreSQL database. The task resumes from the checkpoint kept in that database, so
any number of run-task processes may run at once, and a killed one loses nothing when rerun.
Credentials come from VCC_<ACCOUNT>_CLIENT_ID and VCC_<ACCOUNT>_CLIENT_SECRET (ACCOUNT
upper-cased, other characters as _), or from the TOML file given by --accounts-file or
VCCASYNC_ACCOUNTS ([accounts.NAME] client_id, client_secret, region).
"""


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "run-task", help="run one planned task into PostgreSQL (resumable)",
        description=DESCRIPTION,
    )  # fmt: skip
    parser.add_argument("task", metavar="TASK.json", help="a file holding one task, or -")
    parser.add_argument(
        "--output", "-o", required=True, metavar="URL", help="postgresql://USER@HOST/DATABASE"
    )
    parser.add_argument("--accounts-file", metavar="FILE", help="default: $VCCASYNC_ACCOUNTS")
    parser.add_argument(
        "--concurrency", type=positive(int, "whole number"), default=4, metavar="N",
        help="windows fetched at once (default 4)",
    )  # fmt: skip
    parser.add_argument(
        "--demo", action="store_true",
        help="run against the embedded fake API on 127.0.0.1 (any account name)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {source}: {exc.strerror or exc}") from None


async def run(args: argparse.Namespace) -> int:
    """Run the task; one closing line on stderr."""
    require_postgres(args.output)
    task = task_from_json(_read(args.task))
    async with AsyncExitStack() as stack:
        if args.demo:
            server = await stack.enter_async_context(demo.demo_api())
            found = demo.client_settings(server)
        else:
            found = credentials(task.account, accounts_file=args.accounts_file)
        result = await run_task(
            task, args.output, credentials_for=lambda _: found, concurrency=args.concurrency
        )
    say(
        f"vccasync: task {task.account} {task.id} complete in {redact_url(args.output)}:"
        f" {count(result.written, 'interaction')} written, {count(result.requests, 'request')},"
        f" {result.seconds:.1f} s"
    )
    return 0
