"""Kill -9 a long backfill at several moments; every rerun resumes, the end holds each once.

Every interruption lands while the fake holds a search request at its gate, so the run cannot
have finished before the signal: nothing races a process against a signal.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync._instants import format_instant, parse_instant
from vccasync._windows import Window
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate, running_in_thread
from vccasync.stores._jsonl import checkpoint_path

from .cli_helpers import (
    chronological,
    cli_env,
    read_output,
    run_cli,
    start_cli,
    stored_checkpoint,
)
from .conftest import api_shape

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 60
ARGS = ["interactions", "--start", "2025-01-01", "--end", "2025-03-01", "--quiet"]
ARGS += ["--requests-per-minute", "100000"]
# the ~27 pages of ~22,000 interactions: each run is let through this many search answers,
# then held; it is killed once this many interactions are checkpointed (pages of ~1,000, at
# least ~800, so each threshold is within reach of the answers let through), or at once (0)
KILL_AT = [(0, 0), (3, 1), (6, 3_000), (6, 6_000), (8, 10_000)]


@pytest.fixture(scope="module")
def dataset() -> Any:
    return generate(DatasetSpec(seed=9, start=START, days=DAYS, per_day=400))


@pytest.fixture(scope="module")
def want(dataset: Any) -> list[dict[str, Any]]:
    end = START + timedelta(days=DAYS) - timedelta(milliseconds=1)  # all of 2025-03-01
    return [api_shape(i) for i in dataset.expected(START, end)]


@pytest.fixture(scope="module")
def fake(dataset: Any) -> Iterator[FakeVccServer]:
    with running_in_thread(dataset, FakeConfig()) as server:
        yield server


@pytest.fixture(scope="module")
def full_run_requests(fake: FakeVccServer, tmp_path_factory: pytest.TempPathFactory) -> int:
    """Search requests of one uninterrupted run (the figure a resumed run must stay under)."""
    fake.gate.open()
    fake.reset_stats()
    out = tmp_path_factory.mktemp("baseline") / "full.jsonl"
    done = run_cli([*ARGS, "-o", str(out)], cli_env(fake))
    assert done.returncode == 0, done.stderr
    return fake.stats.search_requests


def held_with(fake: FakeVccServer, out: Path, written: int, process: Any) -> None:
    """Wait until the fake holds a request of ``process`` and ``written`` are checkpointed."""
    assert fake.gate.wait_held(60), "the run never reached the gate"
    for _ in range(6000):  # at most a minute
        if (stored_checkpoint(out) or {}).get("written", 0) >= written:
            return
        assert process.poll() is None, "the run ended while the fake held it"
        time.sleep(0.01)
    raise AssertionError(f"{written} interactions were never checkpointed")


def settle(fake: FakeVccServer) -> None:
    """Let the server notice the dead client's connections, then zero its counters."""
    for _ in range(500):
        if not fake.stats.in_flight:
            break
        time.sleep(0.01)
    fake.reset_stats()


def assert_consistent(out: Path, want: list[dict[str, Any]]) -> dict[str, Any]:
    """What the checkpoint covers is exactly ``written`` interactions of the API's, each once."""
    state = stored_checkpoint(out)
    assert state is not None
    written = state["written"]
    if out.suffix == ".jsonl":  # beyond the checkpointed length: lines the rerun cuts off
        lines = out.read_bytes()[: state["output_bytes"]]
        assert lines.count(b"\n") == written
        covered = chronological([json.loads(line) for line in lines.splitlines()])
    else:
        covered = read_output(out)  # rows and checkpoint commit together
    assert len(covered) == written == len({row["guid"] for row in covered})
    by_guid = {row["guid"]: row for row in want}
    assert all(by_guid.get(row["guid"]) == row for row in covered)
    return state


def assert_resumed(fake: FakeVccServer, state: dict[str, Any]) -> None:
    """The rerun asked only within windows still pending (a pending window may split again),
    and each pending window it asked for resumed from where the checkpoint left it; besides,
    at most one page after a split's dropped token (the order checked where it relied on it)."""
    pending = {Window.from_key(key): token for key, token in state["pending"].items()}
    searches = [r.query for r in fake.stats.records if r.path.endswith("/interactions")]
    repairs = () if state.get("order_broken") else state.get("repairs", {})
    dropped = {Window.from_key(key).after for key in repairs}  # unless running as windows
    checks = [q for q in searches if q.get("continuationToken") in dropped]
    assert len(checks) <= 1
    searches = [q for q in searches if q not in checks]
    assert searches
    first_token: dict[str, str | None] = {}
    for query in searches:
        start = parse_instant(query["start"])
        assert any(w.start <= start <= w.end for w in pending), f"{start} was finished already"
        first_token.setdefault(query["start"], query.get("continuationToken"))
    resumed = [w for w in pending if format_instant(w.start) in first_token]
    assert resumed, "no pending window was asked for"
    for window in resumed:
        asked = first_token[format_instant(window.start)]
        assert asked == pending[window], f"window {window.key} did not resume from its token"


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_kill_9_at_several_moments_then_rerun(
    fake: FakeVccServer,
    want: list[dict[str, Any]],
    full_run_requests: int,
    tmp_path: Path,
    suffix: str,
) -> None:
    out = tmp_path / f"backfill{suffix}"
    args, env = [*ARGS, "-o", str(out)], cli_env(fake)
    state: dict[str, Any] | None = None
    for answers, threshold in KILL_AT:
        settle(fake)
        fake.gate.hold_after(answers)
        process = start_cli(args, env)
        held_with(fake, out, threshold, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"
        if state is not None and state["written"]:
            assert_resumed(fake, state)
        new_state = assert_consistent(out, want)
        assert new_state["written"] >= threshold
        state = new_state
    settle(fake)
    fake.gate.open()
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    assert f"resuming {out}: {state['written']:,} interactions" in done.stderr
    assert "complete:" in done.stderr
    assert_resumed(fake, state)
    assert fake.stats.search_requests < full_run_requests
    got = read_output(out)
    assert len({i["guid"] for i in got}) == len(got)
    assert got == want
    if suffix == ".jsonl":
        assert stored_checkpoint(out)["output_bytes"] == out.stat().st_size  # type: ignore[index]
        assert checkpoint_path(out).exists()


@pytest.mark.slow
def test_ctrl_c_exits_130_and_resumes(
    fake: FakeVccServer, want: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "backfill.sqlite"
    args, env = [*ARGS, "-o", str(out)], cli_env(fake)
    settle(fake)
    fake.gate.hold_after(8)
    process = start_cli(args, env)
    held_with(fake, out, 5_000, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    state = assert_consistent(out, want)
    assert state["written"] >= 5_000 and state["pending"]
    settle(fake)
    fake.gate.open()
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    assert_resumed(fake, state)
    assert read_output(out) == want
