"""``python -m benchmarks.docs_sample``: run the README's demo backfill once and put its
summary line into docs/cli.md, so that the sample there is what the code prints now.

The line goes between the ``<!-- sample: ... -->`` marker and ``<!-- /sample -->``; the
marker names the command that made it. ``--check`` only runs it and says whether the
windows and requests still agree with the docs (the wall time differs from run to run).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
COMMAND = "vccasync interactions --demo --start 2025-01-01 --end 2025-03-31 --output demo.sqlite"
MARKED = re.compile(
    r"(<!-- sample: (?P<command>[^>]*?) -->\n)(?P<line>.*?)(\n<!-- /sample -->)", re.S
)


def demo_line() -> str:
    """The summary line of one run of ``COMMAND`` (in a scratch folder)."""
    with tempfile.TemporaryDirectory() as folder:
        args = COMMAND.split()[1:]
        done = subprocess.run(
            [sys.executable, "-m", "vccasync.cli", *args, "--quiet"],
            cwd=folder, capture_output=True, text=True, check=True,
        )  # fmt: skip
    return done.stderr.strip().splitlines()[-1]


def figures(line: str) -> str:
    """What two runs of the demo agree on: the line without its wall time."""
    return re.sub(r", [\d.]+s$", "", line.strip("`"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.docs_sample", description=__doc__)
    p.add_argument("--check", action="store_true", help="compare only, do not write")
    args = p.parse_args(argv)
    text = DOCS.read_text()
    marked = MARKED.search(text)
    if marked is None or marked["command"] != COMMAND:
        sys.exit(f"{DOCS}: no <!-- sample: {COMMAND} --> marker")
    line = demo_line()
    print(line)
    if args.check:
        same = figures(marked["line"]) == figures(line)
        print("docs/cli.md agrees" if same else f"docs/cli.md says {marked['line']}")
        return 0 if same else 1
    DOCS.write_text(text[: marked.start("line")] + f"`{line}`" + text[marked.end("line") :])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
