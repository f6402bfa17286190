"""``vccasync content`` as a subprocess against the fake API: files, bad input, kill -9, demo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync.content._manifest import MANIFEST_NAME, Manifest
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate
from vccasync.fake import running_in_thread as serve

from .cli_helpers import cli_env, kill_9_when, run_cli, start_cli
from .content_helpers import expected_files, tree

START = datetime(2025, 1, 1, tzinfo=UTC)
RANGE = ["--start", "2025-01-02", "--end", "2025-01-04"]
RANGE_START, RANGE_END = START + timedelta(days=1), START + timedelta(days=4)
FAST = ["--requests-per-minute", "60000", "--quiet", "--max-attempts", "15"]
SPEC = DatasetSpec(
    seed=8, start=START, days=6, per_day=25, content_scale=0.01, extra_keys=("..", "A", "a")
)
FAULTS = FaultConfig(
    rate=0.2, kinds=("500", "drop", "truncate", "stall", "bad-json"), seed=4, stall_seconds=0.05
)


@pytest.fixture(scope="module")
def dataset() -> Any:
    return generate(SPEC)


@pytest.fixture(scope="module")
def faulty(dataset: Any) -> Iterator[FakeVccServer]:
    with serve(dataset, FakeConfig(faults=FAULTS)) as fake:
        yield fake


def expected(dataset: Any, types: set[str] | None = None) -> dict[Path, str]:
    return expected_files(dataset, RANGE_START, RANGE_END - timedelta(milliseconds=1), types)


def test_downloads_every_file_through_faults(
    faulty: FakeVccServer, dataset: Any, tmp_path: Path
) -> None:
    dest = tmp_path / "content"
    done = run_cli(["content", *RANGE, "--dest", str(dest), *FAST], cli_env(faulty))
    assert done.returncode == 0, done.stderr
    want = expected(dataset)
    assert tree(dest) == want
    lines = [json.loads(x) for x in (dest / MANIFEST_NAME).read_text().splitlines()]
    assert {(Path(e["path"]), e["sha256"]) for e in lines} == set(want.items())
    assert f"{len(want)} downloaded" in done.stderr and "0 failed" in done.stderr
    assert sum(faulty.stats.faults.values()) > 0

    again = run_cli(["content", *RANGE, "--dest", str(dest), *FAST], cli_env(faulty))
    assert again.returncode == 0, again.stderr
    assert f"0 downloaded (0 B transferred), {len(want)} already complete" in again.stderr


def test_type_filter(faulty: FakeVccServer, dataset: Any, tmp_path: Path) -> None:
    args = ["content", *RANGE, "--type", "voicemail", "--type", "chatTranscript"]
    done = run_cli([*args, "--dest", str(tmp_path), *FAST], cli_env(faulty))
    assert done.returncode == 0, done.stderr
    assert tree(tmp_path) == expected(dataset, {"voicemail", "chatTranscript"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", ""], "must not be empty"),
        (["--workers", "0"], "must be 1 to 64"),
        (["--start", "2025-01-05", "--end", "2025-01-04"], "end"),
        (["--start", "yesterday"], "not an ISO 8601"),
        (["--dest", "{file}"], "not a directory"),
        (["--dest", "{file}/sub"], "cannot create"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_sends_nothing(
    dataset: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    args = [a.replace("{file}", str(a_file)) for a in args]
    with serve(dataset) as fake:
        full = ["content", *RANGE, "--dest", str(tmp_path / "d"), *FAST, *args]
        done = run_cli(full, cli_env(fake))
        assert fake.stats.requests == 0
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_missing_dest_is_a_usage_error(faulty: FakeVccServer) -> None:
    done = run_cli(["content", *RANGE, *FAST], cli_env(faulty))
    assert done.returncode == 2 and "--dest" in done.stderr


@pytest.mark.slow
def test_kill_9_then_rerun_fetches_only_what_is_missing(dataset: Any, tmp_path: Path) -> None:
    dest = tmp_path / "content"
    args = ["content", *RANGE, "--dest", str(dest), *FAST, "--workers", "4"]
    want = expected(dataset)
    with serve(dataset, FakeConfig(hold_after=1 + len(want) // 3)) as fake:  # 1 search page
        process = start_cli(args, cli_env(fake))
        assert fake.gate.wait_held(60), "the run never reached the gate"
        kill_9_when(process, lambda: bool(Manifest.load(dest / MANIFEST_NAME).entries))
    complete = Manifest.load(dest / MANIFEST_NAME).entries
    assert 0 < len(complete) < len(want)
    with serve(dataset) as fake:
        done = run_cli(args, cli_env(fake))
        fetched = {r.path for r in fake.stats.records if "/content/" in r.path}
    assert done.returncode == 0, done.stderr
    for entry in complete.values():
        assert not any(p.endswith(f"/{entry.guid}/content/{entry.content_key}") for p in fetched)
    assert tree(dest) == want
    assert not list(dest.rglob("*.part"))


def test_demo(tmp_path: Path) -> None:
    narrow = ["--start", "2025-01-06T09:00:00Z", "--end", "2025-01-06T09:30:00Z"]
    done = run_cli(
        ["content", "--demo", *narrow, "--dest", str(tmp_path), "--quiet"], cli_env(None)
    )
    assert done.returncode == 0, done.stderr
    assert "complete:" in done.stderr and "0 failed" in done.stderr
    entries = Manifest.load(tmp_path / MANIFEST_NAME).entries
    assert entries
    for entry in entries.values():
        assert (tmp_path / entry.path).stat().st_size == entry.bytes
