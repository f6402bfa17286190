"""``vccasync content``: download recordings, transcripts and other content of a range."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final

from vccasync._errors import InvalidRequestError
from vccasync.content._bulk import BulkProgress
from vccasync.content._manifest import MANIFEST_NAME

from . import _demo as demo
from ._common import (
    add_client_options,
    add_search_options,
    add_type_option,
    check_types,
    connect,
    open_client,
    query_from_args,
    say,
    summary_on_stop,
)
from ._content_progress import ContentTally
from ._progress import display_for

__all__ = ["DEFAULT_WORKERS", "add_parser", "check_dest", "run"]

DEFAULT_WORKERS: Final = 8
MAX_FAILURES_SHOWN: Final = 5

DESCRIPTION = f"""\
Download every piece of content (recordings, voicemails, transcripts, chat logs, ...) of the
interactions from --start to --end (both included) that match the filters, to
DIR/YYYY/MM/DD/<guid>/<key>.<ext>. Downloads start while the search is still paging and share
its request budget. DIR/{MANIFEST_NAME} records guid, contentKey, type, contentType, start,
path, bytes and sha256 of every file, one JSON object a line, and the version it archived:
lastModified and contentLength as the search listed them, etag and httpLastModified from the
download's answer (when the API sends them). Rerunning the same command skips a complete file
only when its version matches the one the search lists now (a line without a version is
downloaded again and stamped), continues partial ones of the same version (HTTP Range with
If-Range, never splicing two versions) and fetches the rest.
"""


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be 1 to 64, got {value}")
    return value


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "content",
        help="download content (recordings, transcripts, ...) to a directory (resumable)",
        description=DESCRIPTION,
    )
    add_search_options(parser)
    add_type_option(parser)
    parser.add_argument("--dest", required=True, metavar="DIR", help="destination directory")
    parser.add_argument(
        "--workers", type=_workers, metavar="N",
        help=f"downloads at once (default {DEFAULT_WORKERS}); all share the request budget",
    )  # fmt: skip
    add_client_options(parser, demo_data=demo.CONTENT_DATA)
    parser.set_defaults(run=run)


def check_dest(dest: Path) -> None:
    """Refuse a destination that is a file, or whose manifest is a directory."""
    if dest.exists() and not dest.is_dir():
        raise InvalidRequestError(f"--dest {dest} exists and is not a directory")
    manifest = dest / MANIFEST_NAME
    if manifest.exists() and manifest.is_dir():
        raise InvalidRequestError(f"{manifest} is a directory, not a manifest")


async def run(args: argparse.Namespace) -> int:
    """Validate everything, then search and download; exit 1 if any file failed."""
    query = query_from_args(args)
    check_types(args)
    dest = Path(args.dest)
    check_dest(dest)
    async with AsyncExitStack() as stack:
        vcc = await open_client(
            args, stack, demo_spec=demo.CONTENT_SPEC, demo_config=demo.CONTENT_CONFIG
        )
        try:
            await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidRequestError(f"cannot create --dest {dest}: {exc.strerror}") from None
        await connect(vcc, stack)
        found = vcc.search(query)
        tally = ContentTally(BulkProgress(), vcc.stats)
        with (
            summary_on_stop(lambda: tally.summary("stopped")),
            display_for(tally, sys.stderr, quiet=args.quiet),
        ):
            await vcc.download_all(
                found,
                dest,
                types=args.types,
                workers=args.workers or DEFAULT_WORKERS,
                progress=tally.progress,
            )
        progress = tally.progress
        for failure in progress.failures[:MAX_FAILURES_SHOWN]:
            say(f"vccasync: failed: {failure.guid} {failure.content_key!r}: {failure.error}")
        if progress.files_failed:
            say(tally.summary("incomplete") + "; rerun the same command to retry the failures")
            return 1
        say(tally.summary("complete"))
    return 0
