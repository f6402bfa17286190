"""``vccasync sync --content-dest`` killed while the pieces of committed rows download: the
next run fetches exactly what is missing, once, and nothing complete again.

The fake's gate holds content answers only (``gated={"content"}``): the pass itself completes
and commits, then its downloads stop at the gate, where the run is killed.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync.content.manifest import MANIFEST_NAME
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate, running_in_thread
from vccasync.fake.dataset import Dataset

from .cli_helpers import cli_env, run_cli, start_cli
from .content_helpers import expected_files, tree

ANCHOR = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
SPEC = DatasetSpec(
    seed=21, start=ANCHOR - timedelta(days=1), days=1, per_day=10, edge_every=None,
    content_scale=0.001,
)  # fmt: skip
PASSED = 3  # content answers let through before the gate holds the rest


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture
def fake(dataset: Dataset) -> Iterator[FakeVccServer]:
    config = FakeConfig(hold_after=PASSED, gated={"content"})
    with running_in_thread(dataset, config) as server:
        yield server


def manifest_keys(dest: Path) -> list[tuple[str, str]]:
    path = dest / MANIFEST_NAME
    lines = path.read_text().splitlines() if path.exists() else []
    return [(e["guid"], e["contentKey"]) for e in map(json.loads, lines)]


def covered(target: str) -> bool:
    try:
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=0.2) as db:
            row = db.execute("SELECT covered_to FROM vccasync_sync").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] is not None


def until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def fetched(fake: FakeVccServer) -> list[tuple[str, str]]:
    """The (guid, content key) of every content request the fake answered since its reset."""
    out = []
    for record in fake.stats.records:
        head, sep, key = record.path.partition("/content/")
        if sep:
            out.append((head.rsplit("/", 1)[-1], key))
    return out


def test_a_run_killed_before_the_pieces_of_committed_rows_arrive_leaves_no_gap(
    fake: FakeVccServer, dataset: Dataset, tmp_path: Path
) -> None:
    target, dest = str(tmp_path / "store.sqlite"), tmp_path / "content"
    want = {
        (item["guid"], piece["contentKey"])
        for item in dataset.expected(SPEC.start, ANCHOR)
        for piece in item["content"]
    }
    assert len(want) > PASSED + 4
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
    args += ["--content-dest", str(dest)]
    env: dict[str, Any] = cli_env(fake)
    process = start_cli([*args, "--quiet"], env)
    assert fake.gate.wait_held(60), "the downloads never reached the gate"
    until(lambda: covered(target), "the pass committed")
    until(lambda: len(manifest_keys(dest)) == PASSED, "the pieces let through recorded")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.stderr is not None
    process.stderr.close()
    done_before = set(manifest_keys(dest))

    fake.gate.open()  # the held answers go to a dead client
    until(lambda: fake.stats.in_flight == 0, "the held answers ended")
    fake.reset_stats()
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    assert f"{len(want) - PASSED} pieces of the last pass to fetch again" in done.stderr
    again = fetched(fake)
    assert len(again) == len(set(again))  # nothing twice
    assert set(again) == want - done_before  # nothing complete again, nothing missing
    assert set(manifest_keys(dest)) == want
    assert tree(dest) == expected_files(dataset, SPEC.start, ANCHOR)

    fake.reset_stats()
    assert run_cli(args, env).returncode == 0
    assert fetched(fake) == []


def test_sigterm_ends_within_the_stop_timeout_while_downloads_hang(
    fake: FakeVccServer, dataset: Dataset, tmp_path: Path
) -> None:
    """The downloads stay held at the gate until the run has ended: it exits 0 all the same,
    so its stop is bounded by --stop-timeout (no wall-clock assertion needed); a rerun then
    fetches what was cut."""
    target, dest = str(tmp_path / "store.sqlite"), tmp_path / "content"
    want = {
        (item["guid"], piece["contentKey"])
        for item in dataset.expected(SPEC.start, ANCHOR)
        for piece in item["content"]
    }
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
    args += ["--content-dest", str(dest)]
    env: dict[str, Any] = cli_env(fake)
    process = start_cli([*args, "--follow", "--every", "1h", "--stop-timeout", "1s"], env)
    assert fake.gate.wait_held(60), "the downloads never reached the gate"
    until(lambda: covered(target), "the pass committed")
    until(lambda: len(manifest_keys(dest)) == PASSED, "the pieces let through recorded")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert b"stopped at --stop-timeout (1s)" in stderr and b"Traceback" not in stderr
    assert fake.gate.passed == PASSED  # the gate never let another answer through

    fake.gate.open()
    until(lambda: fake.stats.in_flight == 0, "the held answers ended")
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    assert set(manifest_keys(dest)) == want
    assert tree(dest) == expected_files(dataset, SPEC.start, ANCHOR)


def test_sigterm_ends_a_pass_whose_search_hangs(dataset: Dataset, tmp_path: Path) -> None:
    """A pass whose search answer never comes (held at the gate) still ends on SIGTERM within
    --stop-timeout, exit 0; the rerun then completes the pass."""
    target = str(tmp_path / "store.sqlite")
    with running_in_thread(dataset, FakeConfig(hold_after=0, gated={"search"})) as held:
        args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
        env: dict[str, Any] = cli_env(held)
        process = start_cli([*args, "--follow", "--every", "1h", "--stop-timeout", "1s"], env)
        assert held.gate.wait_held(60), "the search never reached the gate"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert b"stopped at --stop-timeout (1s)" in stderr and b"Traceback" not in stderr
        assert held.gate.passed == 0  # the search was still held when the run ended
        held.gate.open()
        until(lambda: held.stats.in_flight == 0, "the held answers ended")
        done = run_cli(args, env)
        assert done.returncode == 0, done.stderr
        assert covered(target)
