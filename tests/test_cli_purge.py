"""``vccasync purge`` without ``--yes`` against the fake: the plan of an archive made by
``vccasync content``, with one file corrupted and one removed; bad input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from vccasync._config import DEFAULT_DELETE_RATE
from vccasync.cli import build_parser
from vccasync.cli._common import client_from_args, open_client
from vccasync.cli._demo import PURGE_CONFIG, PURGE_DELETE_RATE
from vccasync.content._journal import JOURNAL_NAME
from vccasync.content._manifest import MANIFEST_NAME, Manifest
from vccasync.fake import DatasetSpec, FakeVccServer, generate
from vccasync.fake import running_in_thread as serve

from .cli_helpers import cli_env, run_cli

START = datetime(2025, 1, 1, tzinfo=UTC)
ARCHIVED = ["--start", "2025-01-02", "--end", "2025-01-03"]
SCOPE = ["--start", "2025-01-02", "--end", "2025-01-04"]
FAST = ["--requests-per-minute", "60000", "--quiet"]
SPEC = DatasetSpec(seed=12, start=START, days=5, per_day=12, content_scale=0.01)


@pytest.fixture(scope="module")
def dataset() -> Any:
    return generate(SPEC)


@pytest.fixture(scope="module")
def fake(dataset: Any) -> Iterator[FakeVccServer]:
    with serve(dataset) as server:
        yield server


@pytest.fixture(scope="module")
def archive(fake: FakeVccServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("archive")
    done = run_cli(["content", *ARCHIVED, "--dest", str(dest), *FAST], cli_env(fake))
    assert done.returncode == 0, done.stderr
    return dest


def scope_pieces(dataset: Any, end: datetime) -> set[tuple[str, str, str]]:
    return {
        (item["guid"], c["contentKey"], c["type"])
        for item in dataset.expected(datetime(2025, 1, 2, tzinfo=UTC), end)
        for c in item["content"]
    }


def test_the_plan_lists_what_is_kept_and_why_and_deletes_nothing(
    fake: FakeVccServer, dataset: Any, archive: Path
) -> None:
    entries = sorted(Manifest.load(archive / MANIFEST_NAME).entries.values(), key=lambda e: e.path)
    corrupt, removed = entries[0], entries[1]
    path = archive / corrupt.path
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    (archive / removed.path).unlink()

    fake.stats.reset()
    done = run_cli(["purge", *SCOPE, "--archive", str(archive), *FAST], cli_env(fake))
    assert done.returncode == 0, done.stderr
    stats = fake.stats  # a token and searches only: no deletion, no other request
    assert stats.search_requests > 0
    assert stats.requests == stats.token_requests + stats.search_requests
    assert not (archive / JOURNAL_NAME).exists()

    kept = dict(re.findall(r"^kept: (\S+ \S+) \S+: (.+)$", done.stdout, re.M))
    assert kept[f"{corrupt.guid} {corrupt.content_key}"] == "archive copy differs"
    assert kept[f"{removed.guid} {removed.content_key}"] == "archive copy missing"
    in_scope = scope_pieces(dataset, datetime(2025, 1, 4, 23, 59, tzinfo=UTC))
    archived = {(e.guid, e.content_key) for e in entries}
    not_archived = {f"{g} {k}" for g, k, _ in in_scope if (g, k) not in archived}
    assert not_archived and {k for k, r in kept.items() if r == "not in archive"} == not_archived
    assert len(kept) == len(not_archived) + 2

    planned = re.findall(r"^plan: (\S+): (\d+) to delete", done.stdout, re.M)
    assert sum(int(n) for _, n in planned) == len(archived) - 2
    assert "nothing deleted (add --yes to delete)" in done.stderr
    assert f"{len(in_scope)} pieces" in done.stderr


def test_a_type_narrows_the_plan(fake: FakeVccServer, archive: Path) -> None:
    args = ["purge", *ARCHIVED, "--type", "voicemail", "--archive", str(archive), *FAST]
    done = run_cli(args, cli_env(fake))
    assert done.returncode == 0, done.stderr
    assert {t for t in re.findall(r"^plan: (\S+):", done.stdout, re.M)} <= {"voicemail"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--archive", "{tmp}/absent"], "is not a directory"),
        (["--archive", "{tmp}"], "has no manifest.jsonl"),
        (["--archive", "{archive}", "--whole-interactions", "--type", "voicemail"], "--type"),
        (["--archive", "{archive}", "--deletes-per-minute", "0"], "must be positive"),
        (["--archive", "{archive}", "--start", "2025-01-05", "--end", "2025-01-04"], "end"),
        (["--start", "2025-01-02"], "--archive"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_sends_nothing(
    dataset: Any, archive: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)).replace("{archive}", str(archive)) for a in args]
    with serve(dataset) as fresh:
        done = run_cli(["purge", *SCOPE, *FAST, *args], cli_env(fresh))
        assert fresh.stats.requests == 0
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_missing_credentials_is_exit_2(archive: Path) -> None:
    done = run_cli(["purge", *SCOPE, "--archive", str(archive), *FAST], cli_env(None))
    assert done.returncode == 2 and "credentials" in done.stderr


@pytest.mark.parametrize(
    ("options", "budget"),
    [
        ([], DEFAULT_DELETE_RATE),
        (["--deletes-per-minute", "7"], 7.0),
        (["--demo"], PURGE_DELETE_RATE),  # the demo's fake allows more
        (["--demo", "--deletes-per-minute", "7"], 7.0),
    ],
)
async def test_the_deletion_budget_reaches_the_client(options: list[str], budget: float) -> None:
    args = build_parser().parse_args(["purge", *SCOPE, "--archive", ".", *options])
    env = {"VCC_CLIENT_ID": "id", "VCC_CLIENT_SECRET": "secret"}
    small = attrs.evolve(SPEC, days=1, per_day=1)
    async with AsyncExitStack() as stack:
        if args.demo:
            vcc = await open_client(args, stack, demo_spec=small, demo_config=PURGE_CONFIG)
        else:
            vcc = client_from_args(args, env)
        assert vcc.config.deletes_per_minute == budget
