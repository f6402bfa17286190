"""``vccasync purge``: delete content upstream once its archived copy verifies (retention)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final, TextIO

from vccasync._config import DEFAULT_DELETE_RATE
from vccasync._errors import AuthenticationError, InvalidRequestError
from vccasync._instants import parse_instant
from vccasync._query import SearchQuery
from vccasync.content._bulk import format_size
from vccasync.content._journal import JOURNAL_NAME
from vccasync.content._manifest import MANIFEST_NAME, ManifestEntry
from vccasync.content._purge import PurgeProgress, purge
from vccasync.content._retention import MAX_CHECK_AGE, Count, Plan, Reason, TypeSummary

from . import _demo as demo
from ._common import (
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
from ._progress import display_for
from ._purge_progress import PurgeTally

__all__ = ["add_parser", "print_plan", "run"]

VERIFY_THREADS: Final = 2

DESCRIPTION = f"""\
Delete content upstream (recordings, transcripts, ...) of the interactions from --start to
--end that match the filters, but only the version the archive DIR made by 'vccasync content'
holds verified: DIR/{MANIFEST_NAME} lists it at a path inside DIR, its file hashes now to the
manifest's sha256, its size equals the contentLength the API reports, its lastModified is
the API's, and the download's Last-Modified recorded with it agrees (a manifest line without
a version is kept as "archived version unknown": rerun 'vccasync content' for that range to
download and stamp it again). Every deletion follows its own check: the interaction is
fetched (GET /interactions/{{guid}}, one request per deletion, on the request budget) right
before it, and the DELETE leaves at most --max-check-age seconds (default {MAX_CHECK_AGE:g})
after that answer, else the interaction is fetched again. --whole-interactions fetches a
batch's interactions just before the batch, which is sized to fit that bound. Without --yes,
only the plan is shown (pieces and bytes per type to delete, already deleted, and kept with
the reason); nothing is deleted. With --yes every deletion is recorded in DIR/{JOURNAL_NAME}
(fsynced) before and after it is sent; rerunning continues where a stopped run ended and
never sends a deletion twice for what is already gone. Exit 0 for a plan (without --yes) and
when everything in scope is deleted, 1 when anything was kept or a deletion failed. Output
into a closed pipe (| head) ends printing quietly; the exit code reports the deletions.
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
        help="delete whole interactions once every piece of each verifies, in batches sized so"
        " that their checks fit in --max-check-age (up to 1000); not with --type",
    )  # fmt: skip
    parser.add_argument(
        "--max-check-age", type=positive(float, "number"), default=MAX_CHECK_AGE,
        metavar="SECONDS",
        help="a DELETE leaves at most this many seconds after the answer of its own check"
        f" (GET /interactions/{{guid}}); older, it is fetched again (default {MAX_CHECK_AGE:g})",
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


def print_plan(
    plan: Plan, out: TextIO, *, max_check_age: float = MAX_CHECK_AGE, archive: str = "DIR"
) -> None:
    """Per content type: pieces and bytes to delete, already deleted (by the journal), kept
    by reason; how unversioned lines are archived again; the checks and batches."""
    summary = plan.summary()
    for kind in sorted({*summary, *plan.gone}):
        s = summary.get(kind, TypeSummary())
        gone = plan.gone.get(kind, Count())
        kept = Count(sum(c.pieces for c in s.kept.values()), sum(c.bytes for c in s.kept.values()))
        print(
            f"plan: {kind}: {s.delete.pieces} to delete ({format_size(s.delete.bytes)}),"
            f" {gone.pieces} already deleted ({format_size(gone.bytes)}),"
            f" {kept.pieces} kept ({format_size(kept.bytes)})",
            file=out,
        )
        for reason, count in s.kept.items():
            print(
                f"plan: {kind}: {count.pieces} kept ({format_size(count.bytes)}): {reason}",
                file=out,
            )
    unknown = sum(1 for d in plan.decisions if d.reason is Reason.VERSION_UNKNOWN)
    if unknown:
        print(
            f"plan: {unknown} kept as '{Reason.VERSION_UNKNOWN}' (manifest lines without a"
            f" version): rerun 'vccasync content' for that range with --dest {archive} to"
            " download and stamp them again, then purge",
            file=out,
        )
    if plan.whole is not None:
        batches = len(plan.batches())
        print(
            f"plan: {len(plan.whole)} whole interactions in {batches} batches of up to"
            f" {plan.batch_size}, each sent at most {max_check_age:g} s after its interactions"
            " were fetched",
            file=out,
        )
    else:
        print(
            f"plan: each deletion sent at most {max_check_age:g} s after its own check"
            " (GET /interactions/{guid})",
            file=out,
        )


def _report(progress: PurgeProgress, out: TextIO) -> None:
    for d in progress.kept:
        print(f"kept: {d.piece.guid} {d.piece.content_key} {d.piece.type}: {d.reason}", file=out)
    for piece, error in progress.failures:
        print(f"failed: {piece.guid} {piece.content_key} {piece.type}: {error}", file=out)


def to_stdout(write: Callable[[TextIO], None]) -> None:
    """``write`` to stdout; a closed pipe (``| head``) ends printing quietly, as Unix tools
    do: the rest is dropped (stdout now leads nowhere), and the exit code is unchanged."""
    try:
        write(sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail
        os.close(devnull)


def _covered(query: SearchQuery) -> Callable[[ManifestEntry], bool]:
    """Whether a manifest line's interaction starts in the range searched."""

    def covers(entry: ManifestEntry) -> bool:
        try:
            return query.covers(parse_instant(entry.start))
        except ValueError:
            return False

    return covers


async def run(args: argparse.Namespace) -> int:
    """Validate everything, then plan; with ``--yes`` delete. Exit 1 if anything stays."""
    query = query_from_args(args)
    check_types(args)
    archive = _check_archive(args)
    async with AsyncExitStack() as stack:
        vcc = await open_client(
            args, stack, demo_spec=demo.CONTENT_SPEC, demo_config=demo.PURGE_CONFIG,
            on_demo=demo.remembering(archive / JOURNAL_NAME),
        )  # fmt: skip
        await connect(vcc, stack)
        rate = vcc.config.requests_per_minute
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
                max_check_age=args.max_check_age,
                requests_per_minute=rate,
                in_scope=_covered(query),
            )
        progress = tally.progress
        plan = progress.plan
        assert plan is not None

        def show(out: TextIO) -> None:
            print_plan(plan, out, max_check_age=args.max_check_age, archive=str(archive))
            _report(progress, out)

        await asyncio.to_thread(to_stdout, show)
        if not args.yes:
            say(tally.summary("plan") + "; nothing deleted (add --yes to delete)")
            return 0
        if not progress.complete:
            say(tally.summary("incomplete") + "; what was kept or failed stays upstream")
            return 1
        say(tally.summary("complete"))
    return 0
