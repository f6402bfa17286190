"""What the command line needs before it knows the command: the parser class and ``say``.

Kept free of the client's imports, so that ``vccasync --version`` and ``vccasync --help`` start
in a fraction of a second.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["OneLineParser", "say"]


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def say(message: str) -> None:
    """One line on stderr."""
    print(message, file=sys.stderr, flush=True)
