"""Kill -9 a long backfill at several moments; every rerun resumes, the end holds each once."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate, running_in_thread
from vccasync.stores.jsonl import checkpoint_path

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
# a budget of 5 requests a second paces the ~27 pages of the run over about six seconds
ARGS += ["--requests-per-minute", "300"]
# kill once this many of the ~22,000 interactions are checkpointed (0: once the first search
# request is seen), then after a short, varied delay so that kills land anywhere in a write;
# the last moment leaves several pages (over a second) still to fetch
KILL_AT = [(0, 0.0), (2_500, 0.011), (8_000, 0.0), (12_000, 0.023), (15_000, 0.037)]


@pytest.fixture(scope="module")
def dataset() -> Any:
    return generate(DatasetSpec(seed=9, start=START, days=DAYS, per_day=400))


@pytest.fixture(scope="module")
def want(dataset: Any) -> list[dict[str, Any]]:
    end = START + timedelta(days=DAYS) - timedelta(milliseconds=1)  # all of 2025-03-01
    return [api_shape(i) for i in dataset.expected(START, end)]


@pytest.fixture(scope="module")
def fake(dataset: Any) -> Iterator[FakeVccServer]:
    with running_in_thread(dataset, FakeConfig(page_latency=0.05)) as server:
        yield server


@pytest.fixture(scope="module")
def full_run_requests(fake: FakeVccServer, tmp_path_factory: pytest.TempPathFactory) -> int:
    """Search requests of one uninterrupted run (the figure a resumed run must stay under)."""
    fake.reset_stats()
    out = tmp_path_factory.mktemp("baseline") / "full.jsonl"
    done = run_cli([*ARGS, "-o", str(out)], cli_env(fake))
    assert done.returncode == 0, done.stderr
    return fake.stats.search_requests


def wait_for(condition: Callable[[], bool], process: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the kill moment"
        assert time.monotonic() < deadline, "the kill moment never came"
        time.sleep(0.003)


def settle(fake: FakeVccServer) -> None:
    """Let the server notice the dead client's connections, then zero its counters."""
    deadline = time.monotonic() + 5
    while fake.stats.in_flight and time.monotonic() < deadline:
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
    """The rerun asked only for windows still pending, each from where the checkpoint left it."""
    pending = {key.split("/")[0]: token for key, token in state["pending"].items()}
    searches = [r.query for r in fake.stats.records if r.path.endswith("/interactions")]
    assert searches
    first_token: dict[str, str | None] = {}
    for query in searches:
        assert query["start"] in pending, f"window {query['start']} was finished already"
        first_token.setdefault(query["start"], query.get("continuationToken"))
    for start, token in first_token.items():
        assert token == pending[start], f"window {start} did not resume from its token"


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
    for threshold, delay in KILL_AT:
        settle(fake)
        process = start_cli(args, env)
        if threshold == 0:
            wait_for(lambda: fake.stats.search_requests > 0, process)
        else:
            wait_for(lambda: (stored_checkpoint(out) or {}).get("written", 0) >= threshold, process)  # noqa: B023
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"
        if state is not None and state["written"]:
            assert_resumed(fake, state)
        new_state = assert_consistent(out, want)
        assert new_state["written"] >= threshold
        state = new_state
    settle(fake)
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
    process = start_cli(args, env)
    wait_for(lambda: (stored_checkpoint(out) or {}).get("written", 0) >= 5_000, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    state = assert_consistent(out, want)
    settle(fake)
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    assert_resumed(fake, state)
    assert read_output(out) == want
