"""The ``vccasync`` command: one module per subcommand, one line per error, documented exit codes.

Exit codes: 0 done (or nothing left to do), 1 failure after starting (the network outlasted
the retries, the API answered an error; the checkpoint is kept, so a rerun continues),
2 bad input (nothing was sent), 3 authentication refused, 130 interrupted (resumable).

A subcommand is a module with ``add_parser(subparsers)``, which sets ``run`` (an async
function of the parsed arguments returning the exit code) as a default; add it to
``COMMANDS`` with its help line. Only the module of the command given is imported (``--help``
and ``--version`` import none): the client's imports take a second or two on a busy machine.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Collection, Sequence

from vccasync._errors import AuthenticationError, InvalidRequestError, VccError

from ._parsing import OneLineParser, say

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

COMMANDS: dict[str, tuple[str, str]] = {  # command: its module in vccasync.cli, its help line
    "interactions": (
        "_interactions",
        "back up interaction metadata to JSONL, SQLite or PostgreSQL (resumable)",
    ),
    "sync": (
        "_sync",
        "keep an SQLite or PostgreSQL store complete and current (new, changed, removed)",
    ),
    "content": (
        "_content",
        "download content (recordings, transcripts, ...) to a directory (resumable)",
    ),
    "purge": (
        "_purge",
        "delete content upstream once its archived copy verifies (plan without --yes)",
    ),
    "plan": ("_plan", "print a many-account backfill as JSON tasks"),
    "run-task": ("_run_task", "run one planned task into PostgreSQL (resumable)"),
}

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130


def build_parser(full: Collection[str] | None = None) -> OneLineParser:
    """The parser of every subcommand; with ``full``, only those commands get their options
    (the others their name and help line: their modules are not imported)."""
    from vccasync import __version__  # the package's metadata only

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
    for name, (module, line) in COMMANDS.items():
        if full is None or name in full:
            importlib.import_module(f"{__name__}.{module}").add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=line)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``: its first word that is not an option (the top level
    has no option taking a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (errors are one line on stderr)."""
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(full=[name] if (name := _command(words)) in COMMANDS else [])
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and argparse's own (one-line) errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    import asyncio  # not before a command is run

    from vccasync import _tracing as tracing

    from ._common import STOP_SAID  # loaded with the command's module

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
