"""What a newcomer meets first: either form of ``--auth-url``, a mistyped ``--type``, the one
line Ctrl-C leaves, and help without gaps.

Interruptions land while the fake holds a search answer at its gate (or while a write is held
on purpose), never racing a signal against the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import docs_sample
from vccasync._config import ClientConfig, config_from_env
from vccasync._models import ContentType
from vccasync._query import make_query
from vccasync._windows import RESOLUTION
from vccasync.cli import build_parser, main
from vccasync.distributed._tasks import plan_search
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate, running_in_thread
from vccasync.fake import __main__ as fake_main
from vccasync.stores._sqlite import SqliteFile

from .cli_helpers import cli_env, run_cli, start_cli, stored_checkpoint

DOCS = Path(__file__).parent.parent / "docs"
START = datetime(2025, 1, 1, tzinfo=UTC)
DAY = ["--start", "2025-01-02", "--end", "2025-01-02"]
WEEKS = ["--start", "2025-01-01", "--end", "2025-01-21"]  # 3 windows of 2 to 3 pages
FAST = ["--requests-per-minute", "60000", "--quiet"]
STOPPED = re.compile(r"stopped: ([\d,]+) interactions? in .* \((\d+)/(\d+) windows?\)")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVccServer]:
    dataset = generate(DatasetSpec(seed=3, start=START, days=21, per_day=250))
    with running_in_thread(dataset, FakeConfig()) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeVccServer) -> Iterator[FakeVccServer]:
    server.gate.open()
    server.reset_stats()
    yield server
    server.gate.open()


# --auth-url: the base or the token endpoint; a 404 there is a configuration error


@pytest.mark.parametrize("suffix", ["", "/connect/token", "/connect/token/"])
def test_the_auth_url_is_the_base_or_the_token_endpoint(suffix: str) -> None:
    base = "https://emea.cc.vonage.com/Auth"
    config = ClientConfig(client_id="i", client_secret="s", auth_url=base + suffix)
    assert (config.auth_url, config.token_url) == (base, base + "/connect/token")
    env = {"VCC_CLIENT_ID": "i", "VCC_CLIENT_SECRET": "s", "VCC_AUTH_URL": base + suffix}
    assert config_from_env(env).token_url == base + "/connect/token"


def test_the_cli_takes_the_token_endpoint_the_fake_prints(
    fake: FakeVccServer, tmp_path: Path
) -> None:
    endpoint = f"{fake.auth_url}/connect/token"  # as `python -m vccasync.fake` prints it
    out = tmp_path / "out.jsonl"
    done = run_cli(["interactions", *DAY, "-o", str(out), "--auth-url", endpoint, *FAST],
                   cli_env(fake))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert fake.stats.token_requests == 1 and out.stat().st_size > 0


def test_no_token_endpoint_at_the_auth_url_exits_3_naming_the_option(
    fake: FakeVccServer, tmp_path: Path
) -> None:
    wrong = f"{fake.auth_url}/connect/token/connect"
    out = tmp_path / "out.jsonl"
    done = run_cli(["interactions", *DAY, "-o", str(out), "--auth-url", wrong, *FAST],
                   cli_env(fake), timeout=30)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--auth-url" in done.stderr and "404" in done.stderr
    assert "Traceback" not in done.stderr and fake.client_secret not in done.stderr
    assert fake.stats.search_requests == 0


def test_the_help_says_which_auth_url_forms_are_taken() -> None:
    (action,) = [a for a in _parser("content")._actions if "--auth-url" in a.option_strings]
    assert "/connect/token" in (action.help or "") and "either" in (action.help or "")


# --type: a typo is refused, unless --any-type


@pytest.mark.parametrize(
    "command",
    [
        ["content", *DAY, "--dest", "{tmp}/dest"],
        ["purge", *DAY, "--archive", "{tmp}"],
        ["sync", "--output", "{tmp}/s.sqlite", "--since", "2025-01-01", "--content-dest",
         "{tmp}/dest"],
    ],
    ids=["content", "purge", "sync"],
)  # fmt: skip
def test_an_unknown_content_type_is_refused_with_the_list(
    fake: FakeVccServer, tmp_path: Path, command: list[str]
) -> None:
    args = [part.format(tmp=tmp_path) for part in command]
    (tmp_path / "manifest.jsonl").write_text("")  # purge's archive
    done = run_cli([*args, "--type", "callrecording", *FAST], cli_env(fake))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "did you mean callRecording?" in done.stderr and "--any-type" in done.stderr
    assert all(t.value in done.stderr for t in ContentType)
    assert fake.stats.requests == 0 and not (tmp_path / "dest").exists()


def test_any_type_takes_a_type_the_docs_do_not_list(fake: FakeVccServer, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    args = ["content", *DAY, "--dest", str(dest), "--type", "hologram", "--any-type", *FAST]
    done = run_cli(args, cli_env(fake))
    assert done.returncode == 0, done.stderr
    assert "complete:" in done.stderr and " 0 files" in done.stderr


def test_the_docs_list_every_content_type_the_check_knows() -> None:
    text = " ".join((DOCS / "cli.md").read_text().split())
    (listed,) = re.findall(r"content types the API documents: (.*?)\. Any other", text)
    assert re.findall(r"`(\w+)`", listed) == [t.value for t in ContentType]


# Ctrl-C: one line, counting what the store holds


def test_ctrl_c_says_one_line_with_what_the_store_holds(
    fake: FakeVccServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.sqlite"
    fake.gate.hold_after(2)  # two search pages, then every request waits at the gate
    args = ["interactions", *WEEKS, "-o", str(out), "--concurrency", "1", *FAST]
    process = start_cli(args, cli_env(fake))
    assert fake.gate.wait_held(60), "the run never reached the gate"
    for _ in range(3000):  # both pages written (at most a minute)
        if (stored_checkpoint(out) or {}).get("written", 0) >= 1000:
            break
        assert process.poll() is None, "the run ended while the fake held it"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    stderr = err.decode()
    assert process.returncode == 130, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr  # one line, as the docs promise
    assert "interrupted" in stderr and "rerun the same command" in stderr
    assert_said_what_is_stored(stderr, out)


async def test_the_stopped_line_waits_for_the_write_in_flight(
    fake: FakeVccServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out.sqlite"
    for name, value in cli_env(fake).items():
        monkeypatch.setenv(name, value)
    writing, release, writes = threading.Event(), threading.Event(), []
    real = SqliteFile.write_page

    def held_write(store: SqliteFile, page: Any) -> None:
        writes.append(page)
        if len(writes) == 2:  # the second page: in flight when the run is interrupted
            writing.set()
            release.wait(60)
        real(store, page)

    monkeypatch.setattr(SqliteFile, "write_page", held_write)
    args = build_parser().parse_args(["interactions", *WEEKS, "-o", str(out), *FAST])
    run = asyncio.create_task(args.run(args))
    assert await asyncio.to_thread(writing.wait, 60), "the second page was never written"
    run.cancel()  # as Ctrl-C does
    for _ in range(20):  # let the run take the cancellation (a line said now would be early)
        await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await run
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1, stderr
    written = assert_said_what_is_stored(stderr, out)
    assert written == sum(len(page.items) for page in writes)


def assert_said_what_is_stored(stderr: str, out: Path) -> int:
    """The line's interactions and windows are the stored checkpoint's and the rows'."""
    match = STOPPED.search(stderr)
    assert match, stderr
    said, done, total = int(match[1].replace(",", "")), int(match[2]), int(match[3])
    state = stored_checkpoint(out)
    assert state is not None
    with sqlite3.connect(out) as db:
        (rows,) = db.execute("SELECT count(*) FROM interactions").fetchone()
    assert (said, done, total) == (
        rows,
        state["windows_total"] - len(state["pending"]),
        state["windows_total"],
    )
    assert said == state["written"] > 0
    return said


def _parser(command: str) -> argparse.ArgumentParser:
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser: argparse.ArgumentParser = commands.choices[command]
    return parser


# python -m vccasync.fake --help


def test_the_fake_explains_every_option_in_plain_text() -> None:
    parser = fake_main._parser()
    lacking = [a.option_strings for a in parser._actions if not (a.help or "").strip()]
    assert not lacking, f"options without help: {lacking}"
    text = parser.format_help()
    assert not re.search(r"``|:\w+:`", text), text  # no RST markup
    assert "--auth-url" in text and "token endpoint" in text


# figures the docs give


def test_the_docs_state_one_suite_time() -> None:
    said = {
        page: re.findall(r"(\d+ to \d+|about \d+(?: to \d+)?) minutes", page_text(page))
        for page in ("README.md", "docs/index.md", "docs/design.md")
    }
    assert all(len(times) == 1 for times in said.values()), said
    assert len({times[0] for times in said.values()}) == 1, said


def test_the_sample_summary_is_marked_with_the_command_that_makes_it() -> None:
    marked = docs_sample.MARKED.search(page_text("docs/cli.md"))
    assert marked is not None and marked["command"] == docs_sample.COMMAND
    assert docs_sample.COMMAND in page_text("README.md")  # the README's demo
    assert re.fullmatch(
        r"`vccasync: complete: [\d,]+ interactions in demo\.sqlite \((\d+)/\1 windows\),"
        r" \d+ requests, 0 retries, 0 rate-limited, [\d.]+s`",
        marked["line"],
    ), marked["line"]


def page_text(name: str) -> str:
    return (DOCS.parent / name).read_text()


# plan: one name per meaning

PLAN = ["plan", *WEEKS, "--account", "north-1", "--parallel", "2"]


def test_plan_names_each_accounts_budget_account_rpm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*PLAN, "--account-rpm", "6000"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    query = make_query(START, datetime(2025, 1, 22, tzinfo=UTC) - RESOLUTION)
    tasks = plan_search(query, accounts=["north-1"], requests_per_minute=6000, parallel=2)
    assert [json.loads(line) for line in out.splitlines()] == [t.to_json() for t in tasks]
    assert "--account-rpm" in _parser("plan").format_usage()
    for command in ("interactions", "content", "sync", "purge"):  # the client's budget there
        assert "--rpm" in [s for a in _parser(command)._actions for s in a.option_strings]


@pytest.mark.parametrize("old", ["--rpm", "--requests-per-minute"])
def test_plans_old_spelling_still_works_with_a_one_line_warning(
    old: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*PLAN, "--account-rpm", "6000"]) == 0
    want = capsys.readouterr().out
    assert main([*PLAN, old, "6000"]) == 0
    out, err = capsys.readouterr()
    assert out == want
    assert err.splitlines() == [
        f"vccasync plan: warning: {old} is deprecated here, use --account-rpm"
    ]
    usage = _parser("plan").format_help()
    assert "--rpm" not in usage and "--requests-per-minute" not in usage
