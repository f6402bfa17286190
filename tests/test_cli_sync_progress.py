"""``vccasync sync`` tells how it goes: a live display on a terminal, plain lines otherwise,
one line per pass, nothing but errors with ``--quiet``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate, running_in_thread
from vccasync.fake._dataset import Dataset

from .cli_helpers import cli_env, run_cli, start_cli

ANCHOR = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
SPEC = DatasetSpec(seed=3, start=ANCHOR - timedelta(days=1), days=1, per_day=300, edge_every=None)
HANG = 120  # seconds
ARGS = ["sync", "--since", SPEC.start.isoformat(), "--lookback", "2d", "--rpm", "100000"]


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture(scope="module")
def fake(dataset: Dataset) -> Iterator[FakeVccServer]:
    with running_in_thread(dataset, FakeConfig()) as server:
        yield server


def pass_lines(stderr: str) -> list[str]:
    """The lines that end a pass (a pass longer than a few seconds says how it goes, too)."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("vccasync: pass ") and "complete up to" in line
    ]


def test_quiet_prints_nothing_but_errors(fake: FakeVccServer, tmp_path: Path) -> None:
    target = str(tmp_path / "store.sqlite")
    done = run_cli([*ARGS, "-o", target, "--quiet"], cli_env(fake))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    refused = run_cli([*ARGS, "-o", target, "--quiet"], cli_env(fake, VCC_CLIENT_SECRET="wrong"))
    assert refused.returncode == 3
    assert len(refused.stderr.splitlines()) == 1 and "authentication" in refused.stderr


def test_a_one_shot_sync_not_on_a_terminal_says_one_line_for_its_pass(
    fake: FakeVccServer, dataset: Dataset, tmp_path: Path
) -> None:
    done = run_cli([*ARGS, "-o", str(tmp_path / "store.sqlite")], cli_env(fake))
    assert done.returncode == 0, done.stderr
    [line] = pass_lines(done.stderr)
    want = len(dataset.expected(SPEC.start, ANCHOR))
    assert line.startswith(f"vccasync: pass 1: {want:,} new, 0 changed, 0 removed, 0 unchanged;")
    assert "complete up to" in line and "\x1b[" not in done.stderr  # no terminal codes


def test_follow_says_a_line_for_each_pass(fake: FakeVccServer, tmp_path: Path) -> None:
    args = [*ARGS, "-o", str(tmp_path / "store.sqlite"), "--follow", "--every", "0s"]
    process = start_cli(args, cli_env(fake))
    hang = threading.Timer(HANG, process.kill)  # a hang detector, not a timing assertion
    hang.start()
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for raw in process.stderr:
            lines.append(raw.decode())
            if sum("complete up to" in line for line in lines) == 3:  # three passes ended
                break
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        hang.cancel()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(lines)
    said = pass_lines("".join(lines))
    assert [line.split(":")[1] for line in said] == [" pass 1", " pass 2", " pass 3"]
    assert "unchanged" in said[1] and " 0 new" in said[1]  # the second pass found nothing new
