"""The ``vccasync`` command: one module per subcommand, one line per error, documented exit codes.

Exit codes: 0 done (or nothing left to do), 1 failure after starting (the network outlasted
the retries, the API answered an error; the checkpoint is kept, so a rerun continues),
2 bad input (nothing was sent), 3 authentication refused, 130 interrupted (resumable).

A subcommand is a module with ``add_parser(subparsers)``, which sets ``run`` (an async
function of the parsed arguments returning the exit code) as a default; add it to
``COMMANDS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import ModuleType

from vccasync import __version__, tracing
from vccasync.errors import AuthenticationError, InvalidRequestError, VccError

from . import content, interactions, plan, purge, run_task, sync
from .common import STOP_SAID, OneLineParser, say

__all__ = [
    "COMMANDS",
    "EXIT_AUTH",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

COMMANDS: tuple[ModuleType, ...] = (interactions, sync, content, purge, plan, run_task)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130


def build_parser() -> OneLineParser:
    """The parser of every subcommand."""
    parser = OneLineParser(
        prog="vccasync",
        description="The Vonage Contact Center Interaction Content API from the command line:"
        " back up interaction metadata (interactions), keep a store current (sync), download"
        " content (content), delete archived content upstream (purge), and back up many"
        " accounts (plan, run-task).",
        epilog="Exit codes: 0 done, 1 failed (rerun to resume), 2 bad input, 3 authentication"
        " refused, 130 interrupted (rerun to resume).",
    )
    parser.add_argument("--version", action="version", version=f"vccasync {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (errors are one line on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and argparse's own (one-line) errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    STOP_SAID.clear()
    try:
        with tracing.exporting():  # OTEL_TRACES_EXPORTER, when the SDK is installed
            code: int = asyncio.run(args.run(args))
    except InvalidRequestError as exc:
        say(f"vccasync: error: {exc}")
        return EXIT_USAGE
    except AuthenticationError as exc:
        say(f"vccasync: authentication failed: {exc}")
        return EXIT_AUTH
    except (VccError, OSError) as exc:
        say(f"vccasync: error: {exc}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        if not STOP_SAID.is_set():  # else the run's own line said it
            say("vccasync: interrupted; rerun the same command to resume")
        return EXIT_INTERRUPTED
    return code
