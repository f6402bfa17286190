"""``vccasync purge``: delete content upstream once its archived copy verifies (retention)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final, TextIO

from vccasync.config import DEFAULT_DELETE_RATE
from vccasync.content.bulk import format_size
from vccasync.content.journal import JOURNAL_NAME
from vccasync.content.manifest import MANIFEST_NAME
from vccasync.content.purge import PurgeProgress, purge
from vccasync.content.retention import Plan
from vccasync.errors import AuthenticationError, InvalidRequestError

from . import demo
from .common import (
    add_client_options,
    add_search_options,
    add_type_option,
    check_types,
    connect,
    open_client,
    positive,
    query_from_args,
    say,
    summary_on_stop,
)
from .progress import display_for
from .purge_progress import PurgeTally

__all__ = ["add_parser", "print_plan", "run"]

VERIFY_THREADS: Final = 2

DESCRIPTION = f"""\
Delete content upstream (recordings, transcripts, ...) of the interactions from --start to
--end that match the filters, but only the version the archive DIR made by 'vccasync content'
holds verified: DIR/{MANIFEST_NAME} lists it at a path inside DIR, its file hashes now to the
manifest's sha256, its size equals the contentLength the API reports, and its lastModified is
the API's (for manifest lines without one: not later than the file's modification time). An
interaction whose search answer is older than a few minutes, and every interaction of
--whole-interactions, is fetched again just before its deletion and decided anew on what the
API shows then. Without --yes, only the plan is shown
(pieces and bytes per type to delete, and those kept with the reason); nothing is deleted.
With --yes every deletion is recorded in DIR/{JOURNAL_NAME} (fsynced) before and after it is
sent; rerunning continues where a stopped run ended and never sends a deletion twice for what
is already gone. Exit 0 for a plan (without --yes) and when everything in scope is deleted,
1 when anything was kept or a deletion failed.
"""


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "purge",
        help="delete content upstream once its archived copy verifies (plan without --yes)",
        description=DESCRIPTION,
    )
    add_search_options(parser)
    add_type_option(parser)
    parser.add_argument(
        "--archive", required=True, metavar="DIR",
        help=f"the directory 'vccasync content' downloaded to (holds {MANIFEST_NAME})",
    )  # fmt: skip
    parser.add_argument(
        "--whole-interactions", action="store_true",
        help="delete whole interactions (in batches of up to 1000) once every piece of each"
        " verifies; not with --type",
    )  # fmt: skip
    parser.add_argument(
        "--yes",
        action="store_true",
        help="delete; without it only the plan is shown, and the plan exits 0",
    )
    parser.add_argument(
        "--deletes-per-minute", type=positive(float, "number"), metavar="N",
        help=f"deletion budget (default {DEFAULT_DELETE_RATE:g}; {demo.PURGE_DELETE_RATE}"
        " with --demo, whose fake API allows that many), also counted in the request budget",
    )  # fmt: skip
    add_client_options(parser, demo_data=demo.CONTENT_DATA)
    parser.set_defaults(run=run)


def _check_archive(args: argparse.Namespace) -> Path:
    archive = Path(args.archive)
    if not archive.is_dir():
        raise InvalidRequestError(f"--archive {archive} is not a directory")
    if not (archive / MANIFEST_NAME).is_file():
        raise InvalidRequestError(
            f"--archive {archive} has no {MANIFEST_NAME}: not an archive of 'vccasync content'"
        )
    if args.whole_interactions and args.types:
        raise InvalidRequestError(
            "--whole-interactions deletes every piece of an interaction: it cannot be used"
            " with --type"
        )
    return archive


def print_plan(plan: Plan, out: TextIO) -> None:
    """Per content type: pieces and bytes to delete, kept by reason."""
    for kind, s in plan.summary().items():
        kept = sum(c.pieces for c in s.kept.values())
        kept_bytes = sum(c.bytes for c in s.kept.values())
        print(
            f"plan: {kind}: {s.delete.pieces} to delete ({format_size(s.delete.bytes)}),"
            f" {kept} kept ({format_size(kept_bytes)})",
            file=out,
        )
        for reason, count in s.kept.items():
            print(
                f"plan: {kind}: {count.pieces} kept ({format_size(count.bytes)}): {reason}",
                file=out,
            )
    if plan.whole is not None:
        batches = len(plan.batches())
        print(f"plan: {len(plan.whole)} whole interactions in {batches} batches", file=out)


def _report(progress: PurgeProgress, out: TextIO) -> None:
    for d in progress.kept:
        print(f"kept: {d.piece.guid} {d.piece.content_key} {d.piece.type}: {d.reason}", file=out)
    for piece, error in progress.failures:
        print(f"failed: {piece.guid} {piece.content_key} {piece.type}: {error}", file=out)


async def run(args: argparse.Namespace) -> int:
    """Validate everything, then plan; with ``--yes`` delete. Exit 1 if anything stays."""
    query = query_from_args(args)
    check_types(args)
    archive = _check_archive(args)
    async with AsyncExitStack() as stack:
        vcc = await open_client(
            args, stack, demo_spec=demo.CONTENT_SPEC, demo_config=demo.PURGE_CONFIG
        )
        await connect(vcc, stack)
        tally = PurgeTally(PurgeProgress(), vcc.stats)
        with (
            # a refused delete scope is one line (exit 3); the rerun settles its intent
            summary_on_stop(lambda: tally.summary("stopped"), unless=AuthenticationError),
            display_for(tally, sys.stderr, quiet=args.quiet),
        ):
            await purge(
                vcc,
                vcc.search(query, ordered=False),
                archive,
                types=args.types,
                whole=args.whole_interactions,
                execute=args.yes,
                parallel=VERIFY_THREADS,
                progress=tally.progress,
            )
        progress = tally.progress
        assert progress.plan is not None
        await asyncio.to_thread(print_plan, progress.plan, sys.stdout)
        await asyncio.to_thread(_report, progress, sys.stdout)
        if not args.yes:
            say(tally.summary("plan") + "; nothing deleted (add --yes to delete)")
            return 0
        if not progress.complete:
            say(tally.summary("incomplete") + "; what was kept or failed stays upstream")
            return 1
        say(tally.summary("complete"))
    return 0
