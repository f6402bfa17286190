"""The command line's help agrees with the docs: every command named, every option explained,
the version printed, demo settings kept in one module."""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import vccasync
from vccasync.cli import COMMANDS, build_parser, main
from vccasync.cli._common import DeprecatedAlias
from vccasync.sync import parse_duration

CLI = Path(vccasync.__file__).parent / "cli"


def subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Each subcommand's name and parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def command_help(name: str) -> str:
    """The help of ``vccasync NAME``, on one line (argparse wraps it at any word)."""
    return " ".join(dict(subparsers(build_parser()))[name].format_help().split())


def option_help(command: str, option: str) -> str:
    """The help text of one option of ``vccasync COMMAND``."""
    parser = dict(subparsers(build_parser()))[command]
    (action,) = [a for a in parser._actions if option in a.option_strings]
    return action.help or ""


def test_every_command_and_option_has_help() -> None:
    parser = build_parser()
    commands = dict(subparsers(parser))
    assert set(commands) == {"interactions", "sync", "content", "purge", "plan", "run-task"}
    lacking = [
        f"vccasync {name} {action.option_strings or action.dest}"
        for name, sub in [("", parser), *commands.items()]
        for action in sub._actions
        if not isinstance(action, argparse._SubParsersAction | DeprecatedAlias)
        and not (action.help and action.help.strip() and action.help != argparse.SUPPRESS)
    ]
    assert not lacking, f"options without help: {lacking}"


def test_the_description_names_every_command() -> None:
    parser = build_parser()
    description = parser.description or ""
    for name in dict(subparsers(parser)):
        assert re.search(rf"\b{re.escape(name)}\b", description), name


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"vccasync {vccasync.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", vccasync.__version__)


def test_sync_help_lists_what_the_docs_say() -> None:
    assert ".sqlite3" in option_help("sync", "--output")
    assert "--demo" in option_help("sync", "--since")  # --demo needs no --since
    assert "--since" in command_help("sync").split("--demo")[-1]
    for option in ("--lookback", "--every"):
        assert "1h30m" in option_help("sync", option), option
    assert parse_duration("1h30m").total_seconds() == 5400


def test_interactions_output_help_lists_sqlite3() -> None:
    assert ".sqlite3" in option_help("interactions", "--output")


def test_purge_help_says_a_plan_exits_0() -> None:
    text = command_help("purge")
    assert re.search(r"plan[^.]*exits? 0|exits? 0[^.]*plan", text), text


def _module_level_names(path: Path) -> Iterator[str]:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                yield target.id


def test_demo_settings_live_in_the_demo_module_only() -> None:
    for path in sorted(CLI.glob("*.py")):
        if path.name == "_demo.py":
            continue
        names = [n for n in _module_level_names(path) if "DEMO" in n]
        assert not names, f"{path.name} defines demo settings {names}: move them to demo.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        fake = [
            node.module
            for node in tree.body  # module level; `if TYPE_CHECKING:` imports are for typing
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vccasync.fake")
        ]
        assert not fake, f"{path.name} imports {fake}: only demo.py reaches the fake"


_LOADED = """
import runpy, sys
sys.argv = ["vccasync", *sys.argv[1:]]
try:
    runpy.run_module("vccasync.cli", run_name="__main__")
except SystemExit as exit_:
    assert exit_.code == 0, exit_.code
heavy = ("aiohttp", "asyncpg", "rich", "vccasync._client", "vccasync.cli._interactions")
print(sorted(name for name in sys.modules if name.startswith(heavy)), file=sys.stderr)
"""


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_import_none_of_the_client(option: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, option], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("vccasync" if option == "--version" else "usage: vccasync")
    assert done.stderr.strip() == "[]"


def test_the_top_level_help_names_the_commands_as_their_modules_do() -> None:
    assert build_parser(full=[]).format_help() == build_parser().format_help()
    assert set(dict(subparsers(build_parser(full=["plan"])))) == set(COMMANDS)
